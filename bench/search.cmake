# In-process search bench (the gRPC-free side of the search table).
add_executable(search_inprocess_bench ${CMAKE_CURRENT_LIST_DIR}/search_inprocess.cc)
target_link_libraries(search_inprocess_bench PRIVATE embedsearch_service
  embedsearch_client absl::flags absl::flags_parse)
target_compile_options(search_inprocess_bench PRIVATE ${EMBEDSEARCH_WARNINGS})
