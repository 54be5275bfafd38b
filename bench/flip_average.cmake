# flip_average_eval: retrieval metrics of a bundle's model with and without
# flip-averaged embeddings (a study; the service does not flip-average).
add_executable(flip_average_eval ${CMAKE_CURRENT_LIST_DIR}/flip_average.cc)
target_link_libraries(flip_average_eval PRIVATE embedsearch_trainer
  absl::flags absl::flags_parse)
target_compile_options(flip_average_eval PRIVATE ${EMBEDSEARCH_WARNINGS})
