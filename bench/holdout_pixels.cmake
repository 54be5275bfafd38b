# holdout_pixel_baseline: raw-pixel 1-NN on the held-out classes of an image
# folder, split as the trainer's --holdout_classes splits it (the floor a
# trained encoder must beat on unseen classes; BENCHMARKS.md, issue 17).
add_executable(holdout_pixel_baseline ${CMAKE_CURRENT_LIST_DIR}/holdout_pixels.cc)
target_link_libraries(holdout_pixel_baseline PRIVATE embedsearch_trainer
  absl::flags absl::flags_parse)
target_compile_options(holdout_pixel_baseline PRIVATE ${EMBEDSEARCH_WARNINGS})
