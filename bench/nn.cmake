# nn_bench: the reference encoder's batch-1 latency, batch-256 encoding
# throughput and one SGD/Adam training step on a batch of 128 (JSON lines).
# bench/nn_compare.sh runs it beside PyTorch (bench/torch_encoder.py) and
# writes bench/results/nn.md.
add_executable(nn_bench ${CMAKE_CURRENT_LIST_DIR}/nn_bench.cc)
target_link_libraries(nn_bench PRIVATE embedsearch_nn absl::flags absl::flags_parse)
target_compile_options(nn_bench PRIVATE ${EMBEDSEARCH_WARNINGS} ${EMBEDSEARCH_ARCH_FLAGS})
