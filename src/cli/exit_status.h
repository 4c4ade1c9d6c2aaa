#pragma once

#include "util/status.h"

namespace greylight::cli {

// The exit statuses of greylightd and greylight, one meaning each, postgrey's where it has
// one (documented in greylightd(8) and greylight(1), EXIT STATUS).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;        // the command line cannot be read: an unknown option
                                            // or command, a missing value or required option
inline constexpr int kExitConfig = 2;       // a value is invalid: an option, a whitelist or trap
                                            // file, a store URI
inline constexpr int kExitUnavailable = 3;  // something needed cannot be reached or read:
                                            // the store, a socket, the policy server
inline constexpr int kExitAbsent = 4;       // greylight: the record is absent, or `pass` found the
                                            // triplet passed already
inline constexpr int kExitLocked = 11;      // greylightd: another greylightd holds the dbdir

// The exit status for a failure of kind `status.code()`: kUsage 1, kInvalidArgument 2,
// kNotFound 4, kBusy 11, any other 3. REQUIRES: !status.ok().
int ExitStatusFor(const Status& status);

}  // namespace greylight::cli
