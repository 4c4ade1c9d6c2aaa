#pragma once

// The one place where the greylight tool opens a store: it turns the tool's options into a
// store::StoreConfig for store::OpenStore, which knows every backend and URI.

#include <memory>
#include <string>
#include <string_view>

#include "cli/policy_config.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::tools {

// Whether a command needs state that already exists (everything that reads) or may start
// an empty store (the target of `migrate` and `import-postgrey`).
enum class StoreUse { kExisting, kCreate };

// The store URI used when --store is not given: LMDB at --dbdir ("lmdb:<dbdir>").
std::string DefaultStoreUri(const cli::PolicyConfig& config);

// Opens the store named by `uri` (any URI store::OpenStore takes) with the daemon's
// options in `config`, as a tool works beside a running greylightd: no LMDB dbdir lock,
// every write committed before it returns (commit interval 0), no background expiry, and an
// LMDB store created by root in a directory owned by another user handed to that user.
// Errors: those of store::OpenStore, among them NotFound ("no greylight store at DIR: ...")
// if `use` is kExisting and there is no LMDB store there; kUnavailable if the store does not
// answer now (an unreachable Redis is reported, not shown as empty results). `clock` must
// outlive the store.
Result<std::unique_ptr<store::Store>> OpenToolStore(std::string_view uri,
                                                    const cli::PolicyConfig& config,
                                                    const Clock& clock,
                                                    StoreUse use = StoreUse::kExisting);

// A string naming the place `uri` refers to, equal for two URIs that name the same store
// (store::StoreIdentity), for `migrate` to refuse copying a store onto itself.
std::string StoreIdentity(std::string_view uri, const cli::PolicyConfig& config);

}  // namespace greylight::tools
