# image_bench: decode / preprocess / encode costs of core/image and the
# Fashion-MNIST load of core/data. bench/image_compare.sh runs it beside the
# same operations in Pillow + NumPy and writes bench/results/image.md.
add_executable(image_bench ${CMAKE_CURRENT_LIST_DIR}/image_bench.cc)
target_link_libraries(image_bench PRIVATE embedsearch_data absl::flags absl::flags_parse)
target_compile_options(image_bench PRIVATE ${EMBEDSEARCH_WARNINGS} ${EMBEDSEARCH_ARCH_FLAGS})
target_compile_definitions(image_bench PRIVATE
  EMBEDSEARCH_FASHION_MNIST_DIR="${EMBEDSEARCH_FASHION_MNIST_DIR}")
