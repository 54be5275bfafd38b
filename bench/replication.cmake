# Shared PostgreSQL catalog vs SQLite (BENCHMARKS.md, "Replicas on
# PostgreSQL"): acknowledged adds/s, search throughput, replication lag.
# Uses the test helpers (throw-away cluster, server processes, bundles), so
# it is built with the tests only.
if(EMBEDSEARCH_BUILD_TESTS)
  add_executable(replication_bench ${CMAKE_CURRENT_LIST_DIR}/replication_bench.cc)
  target_link_libraries(replication_bench PRIVATE embedsearch_server_testing
    embedsearch_client_test_util embedsearch_test_pg_cluster absl::flags
    absl::flags_parse)
  target_compile_definitions(replication_bench PRIVATE
    EMBEDSEARCH_BINARY_DIR="${PROJECT_BINARY_DIR}")
  target_compile_options(replication_bench PRIVATE ${EMBEDSEARCH_WARNINGS})
  add_dependencies(replication_bench embedsearch-server embedsearch-catalog)
endif()
