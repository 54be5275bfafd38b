// embedsearch_core is the union of the core units; this file gives the
// aggregate library one object of its own.
namespace embedsearch {
const char* CoreVersion() { return "0.1.0"; }
}  // namespace embedsearch
