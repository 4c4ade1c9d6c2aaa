#pragma once

#include "bench/endpoint.h"

namespace greylight::bench {

struct NullServerOptions {
  Endpoint listen;
  int threads = 1;
};

// Serves the policy protocol with the least possible work: finds each request's terminating
// empty line and answers "action=dunno\n\n", in order, on persistent connections, pipelined
// input included. It stands for the machine's limit in benchmarks. Blocks until SIGINT or
// SIGTERM; returns the process exit status (non-zero if it could not listen).
int RunNullServer(const NullServerOptions& options);

}  // namespace greylight::bench
