# The dependency order of docs/design.md, enforced by the compiler: each library target's
# public include directory holds only its own module's headers, so a module sees a header
# only if it links the module that owns it (directly or through a module it links), and an
# #include against the order fails to compile, not just to link.
#
#   greylight_module_headers(TARGET DIR [EXCLUDE name.h ...] [ONLY name.h ...])
#
# makes <build>/module-include/TARGET/DIR/name.h a link to src/DIR/name.h for each header
# directly in src/DIR (not its subfolders, which are other modules), or only those named by
# ONLY, minus EXCLUDE, and adds that tree to TARGET's PUBLIC include directories. Sources
# include headers as "DIR/name.h", e.g. "store/lmdb/lmdb_store.h".
function(greylight_module_headers target dir)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "EXCLUDE;ONLY")
  set(tree ${CMAKE_BINARY_DIR}/module-include/${target})
  file(REMOVE_RECURSE ${tree})
  file(MAKE_DIRECTORY ${tree}/${dir})
  if(arg_ONLY)
    set(headers "")
    foreach(name ${arg_ONLY})
      list(APPEND headers ${PROJECT_SOURCE_DIR}/src/${dir}/${name})
    endforeach()
  else()
    file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${dir}/*.h)
  endif()
  foreach(header ${headers})
    get_filename_component(name ${header} NAME)
    if(NOT name IN_LIST arg_EXCLUDE)
      if(NOT EXISTS ${header})
        message(FATAL_ERROR "greylight_module_headers(${target}): ${header} does not exist")
      endif()
      file(CREATE_LINK ${header} ${tree}/${dir}/${name} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PUBLIC ${tree})
endfunction()
