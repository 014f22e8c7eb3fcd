# Deployment tests, included by the top-level CMakeLists.txt: the kustomize components and
# post-render.sh over real istiod chart output, every Helm install path rendered by a real
# helm, the linters, and the container image's closure. Python scripts on Debian's
# /usr/bin/python3 with python3-yaml; each exits 77 (shown by ctest as skipped, with the
# reason in its output) only when a tool truly cannot be had.
set(CACERTS_DEPLOY_PYTHON /usr/bin/python3 CACHE FILEPATH
    "Python 3 with PyYAML (Debian: python3-yaml) for the deployment tests")

set(_cacerts_deploy_env
  CACERTS_SOURCE_DIR=${PROJECT_SOURCE_DIR}
  CACERTS_BUILD_DIR=${PROJECT_BINARY_DIR}
  CACERTS_VAULT_TEST_SERVER=$<TARGET_FILE:vault-test-server>
  PYTHONDONTWRITEBYTECODE=1)

foreach(_cacerts_deploy_test kustomize prometheus_rules helm lint image)
  add_test(NAME deploy.${_cacerts_deploy_test}
           COMMAND ${CACERTS_DEPLOY_PYTHON}
                   ${PROJECT_SOURCE_DIR}/tests/deploy/test_${_cacerts_deploy_test}.py
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(deploy.${_cacerts_deploy_test} PROPERTIES
    ENVIRONMENT "${_cacerts_deploy_env}"
    SKIP_RETURN_CODE 77
    TIMEOUT 900
    LABELS deploy)
endforeach()
# The arm64 image: the same test over the binary cross-compiled as the Dockerfile does for
# linux/arm64, run under qemu-user (scripts/install-deps.sh --cross arm64 installs both).
add_test(NAME deploy.image-arm64
         COMMAND ${CACERTS_DEPLOY_PYTHON} ${PROJECT_SOURCE_DIR}/tests/deploy/test_image.py
         WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
set_tests_properties(deploy.image-arm64 PROPERTIES
  ENVIRONMENT "${_cacerts_deploy_env};CACERTS_IMAGE_ARCH=arm64"
  SKIP_RETURN_CODE 77
  LABELS deploy)
# The image tests build the static binary on their first run.
set_tests_properties(deploy.image deploy.image-arm64 PROPERTIES TIMEOUT 2400)
