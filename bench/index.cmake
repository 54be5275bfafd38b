# index_bench: recall@10 vs exact search and queries/s for Flat, HNSW32,
# IVF256,Flat and IVF256,PQ16 on the 60k Fashion-MNIST gallery, plus latency
# and memory against gallery size. Results: bench/results/index.md.
add_executable(index_bench ${CMAKE_CURRENT_LIST_DIR}/index_bench.cc)
target_link_libraries(index_bench PRIVATE embedsearch_index_store embedsearch_data
  OpenMP::OpenMP_CXX absl::flags absl::flags_parse)
target_compile_options(index_bench PRIVATE ${EMBEDSEARCH_WARNINGS} ${EMBEDSEARCH_ARCH_FLAGS})
# make_big_bundle: a 1M-item bundle tiled from a trained one, for the
# server's memory and latency at gallery sizes beyond Fashion-MNIST.
add_executable(make_big_bundle ${CMAKE_CURRENT_LIST_DIR}/make_big_bundle.cc)
target_link_libraries(make_big_bundle PRIVATE embedsearch_core absl::flags absl::flags_parse)
target_compile_options(make_big_bundle PRIVATE ${EMBEDSEARCH_WARNINGS} ${EMBEDSEARCH_ARCH_FLAGS})
