# split_export: an image folder as embedsearch-trainer splits, fits and
# normalizes it, written as raw arrays for a peer trainer in another
# framework (bench/torch_trainer.py --split; bench/emoji_compare.sh).
add_executable(split_export ${CMAKE_CURRENT_LIST_DIR}/split_export.cc)
target_link_libraries(split_export PRIVATE embedsearch_trainer
  absl::flags absl::flags_parse)
target_compile_options(split_export PRIVATE ${EMBEDSEARCH_WARNINGS})
