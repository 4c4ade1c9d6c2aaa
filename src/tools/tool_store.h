#pragma once

// The one place where the greylight tool opens a store. Today it knows the LMDB backend;
// once src/store/open_store.h exists this becomes a call to store::OpenStore, so every
// command gains the Redis URIs at once.

#include <memory>
#include <string>
#include <string_view>

#include "cli/policy_config.h"
#include "store/store.h"
#include "util/status.h"

namespace greylight::tools {

// Whether a command needs state that already exists (everything that reads) or may start
// an empty store (the target of `migrate` and `import-postgrey`).
enum class StoreUse { kExisting, kCreate };

// The store URI used when --store is not given: LMDB at --dbdir ("lmdb:<dbdir>").
std::string DefaultStoreUri(const cli::PolicyConfig& config);

// Opens the store named by `uri`:
//   "lmdb:"        LMDB at config.dbdir (greylightd's --dbdir)
//   "lmdb:PATH"    LMDB in the directory PATH
// LMDB is opened beside a possibly running greylightd (no dbdir lock) and commits every
// write at once (commit interval 0), so a tool's change is durable when it returns. A
// store created by root in a directory owned by another user is handed to that user.
// Returns InvalidArgument for a malformed URI or a backend not built in (redis://,
// redis+unix://, redis+sentinel://), NotFound if `use` is kExisting and there is no
// store at the place named, and the backend's error if opening fails.
Result<std::unique_ptr<store::Store>> OpenToolStore(std::string_view uri,
                                                    const cli::PolicyConfig& config,
                                                    StoreUse use = StoreUse::kExisting);

// A string naming the place `uri` refers to, equal for two URIs that name the same store
// (LMDB paths are made absolute and canonical), for `migrate` to refuse copying a store
// onto itself.
std::string StoreIdentity(std::string_view uri, const cli::PolicyConfig& config);

}  // namespace greylight::tools
