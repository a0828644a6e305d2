// check(cond) for the fuzz targets: a failed invariant names its file and line before the
// abort that libFuzzer reports as the finding.
#pragma once

#include <cstdio>
#include <cstdlib>

#define check(ok)                                                          \
  do {                                                                     \
    if (!(ok)) {                                                           \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #ok);                                                   \
      std::abort();                                                        \
    }                                                                      \
  } while (false)
