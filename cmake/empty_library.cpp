// Stands in for a library layer that has no source files yet (see moeslice_library.cmake).
namespace moeslice {
void empty_library_placeholder();
void empty_library_placeholder() {}
}  // namespace moeslice
