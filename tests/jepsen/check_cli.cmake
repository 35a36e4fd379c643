# Runs tuplekv-check and checks its exit status and output.
#   cmake -DCHECK=<tuplekv-check> -DWORKLOAD=w -DHISTORY=file
#         [-DOPTIONS=json] -DEXPECT_EXIT=n -DEXPECT_TEXT=s -P check_cli.cmake
set(args ${WORKLOAD} ${HISTORY})
if(DEFINED OPTIONS)
  set(args -o ${OPTIONS} ${args})
endif()
execute_process(COMMAND ${CHECK} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL EXPECT_EXIT)
  message(FATAL_ERROR "exit ${rc}, expected ${EXPECT_EXIT}\n${out}\n${err}")
endif()
string(FIND "${out}" "${EXPECT_TEXT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "output lacks \"${EXPECT_TEXT}\":\n${out}\n${err}")
endif()
