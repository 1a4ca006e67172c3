# moeslice_library(NAME SOURCES_DIR [extra sources...]): a static library made of every .cpp in
# the calling directory (plus extra sources). An empty directory still yields a valid target, so a
# layer can be declared before its first file lands.
function(moeslice_library name)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(APPEND sources ${ARGN})
  if(NOT sources)
    set(sources ${PROJECT_SOURCE_DIR}/cmake/empty_library.cpp)
  endif()
  add_library(${name} STATIC ${sources})
endfunction()
