#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace greylight::server {

// Process-level steps of a daemon's start-up, in the order greylightd calls them.

// If running as root: chown `socket_paths` to user:group, then switch to them (setgid,
// initgroups, setuid). Does nothing when not root. Fails for an unknown user or group.
Status DropPrivileges(const std::string& user, const std::string& group,
                      const std::vector<std::string>& socket_paths);

// Forks into the background, starts a new session and points stdin/stdout/stderr at
// /dev/null. Returns in the child only.
Status Daemonize();

// Raises the soft open-file limit to the hard one: each connection (one per Postfix smtpd
// process) holds a descriptor. Returns the limit now in force.
Result<size_t> RaiseDescriptorLimit();

// Descriptors greylightd needs besides its connections: listeners, the store, DNS
// sockets, log and metrics.
inline constexpr size_t kReservedDescriptors = 64;

// Writes the process id to `path` (replacing it).
Status WritePidFile(const std::string& path);

}  // namespace greylight::server
