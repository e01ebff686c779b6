# Install rules (docs/install.md): `cmake --install build --prefix P` gives
#   P/lib/libshmbus.so.0.3.0 (+ .so.0, .so)    the library, SONAME libshmbus.so.0
#   P/include/shmbus/*.h, *.hpp                exactly api/include/shmbus/
#   P/include/shmbus.h, shmbus_frame.h          one-line forwarders, so -IP/include serves both
#                                               <shmbus.h> and <shmbus/shmbus.h>
#   P/lib/pkgconfig/shmbus.pc                  prefix=P (the prefix given at install time)
#   P/lib/cmake/shmbus/                        find_package(shmbus 0.3) -> shmbus::shmbus
#   P/bin/...                                  the programs, RPATH $ORIGIN/../lib
#   P/share/doc/shmbus/                        README.md and docs/
# Nothing private: the static shmpool, bus and tool helper libraries are never installed.
include(CMakePackageConfigHelpers)

set(SHMBUS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shmbus)
set(SHMBUS_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The library and its headers. The export carries the include directory and the SONAME.
install(TARGETS shmbus EXPORT shmbusTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/api/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT Development)

# The CMake package: shmbusConfig.cmake, its version file (0.3.x satisfies 0.3) and the
# exported target shmbus::shmbus.
install(EXPORT shmbusTargets NAMESPACE shmbus:: DESTINATION ${SHMBUS_CMAKE_DIR}
        COMPONENT Development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shmbusConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shmbusConfig.cmake INSTALL_DESTINATION ${SHMBUS_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shmbusConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shmbusConfig.cmake
              ${PROJECT_BINARY_DIR}/shmbusConfigVersion.cmake
        DESTINATION ${SHMBUS_CMAKE_DIR} COMPONENT Development)

# pkg-config: the template gets the version and directories now, and the prefix at install
# time (CMAKE_INSTALL_PREFIX is then the --prefix given to `cmake --install`), so the file
# names the directory it was really installed under.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE ${CMAKE_INSTALL_${dir}})
    set(SHMBUS_PC_${dir} ${CMAKE_INSTALL_${dir}})
  else()
    set(SHMBUS_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/shmbus.pc.in ${PROJECT_BINARY_DIR}/shmbus.pc.in @ONLY)
install(CODE "
  file(READ \"${PROJECT_BINARY_DIR}/shmbus.pc.in\" pc)
  string(REPLACE \"%PREFIX%\" \"\${CMAKE_INSTALL_PREFIX}\" pc \"\${pc}\")
  file(WRITE \"${PROJECT_BINARY_DIR}/shmbus.pc\" \"\${pc}\")" COMPONENT Development)
install(FILES ${PROJECT_BINARY_DIR}/shmbus.pc DESTINATION ${SHMBUS_PC_DIR}
        COMPONENT Development)

# The programs. They find libshmbus.so next to them: RPATH $ORIGIN/<bin to lib>.
file(RELATIVE_PATH _bin_to_lib /prefix/${CMAKE_INSTALL_BINDIR} /prefix/${CMAKE_INSTALL_LIBDIR})
set(SHMBUS_PROGRAMS shmbus-cli shmbus-monitor camera-pub frame-sink frame-stats shmbus-bench
                    shmbus-chaos shmbus-bridge shmbus-bench-bridge)
foreach(prog ${SHMBUS_PROGRAMS})
  if(TARGET ${prog}) # the fuzz build makes no programs
    set_target_properties(${prog} PROPERTIES INSTALL_RPATH "$ORIGIN/${_bin_to_lib}")
    install(TARGETS ${prog} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)
  endif()
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT Runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT Runtime FILES_MATCHING PATTERN "*.md")
