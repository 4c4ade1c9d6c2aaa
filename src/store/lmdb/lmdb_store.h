#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "store/store.h"
#include "store/store_config.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::store {

struct LmdbOptions {
  static constexpr std::string_view kDataFile = "greylight.lmdb";  // in store.dbdir
  static constexpr std::string_view kLockFile = "greylight.lock";  // in store.dbdir
  static constexpr size_t kDefaultExpiryBatch = 5000;  // records examined per expiry step
  static constexpr size_t kDefaultInitialMapBytes = size_t{64} << 20;

  // Uses dbdir, timing, commit_interval, exclusive, background_expiry (only with a
  // non-zero commit interval), must_exist and hand_new_files_to_dir_owner.
  StoreConfig store;
  size_t expiry_batch = kDefaultExpiryBatch;
  // The memory map starts at this size and doubles whenever a commit finds it full.
  size_t initial_map_bytes = kDefaultInitialMapBytes;
};

// Opens or creates the embedded default store: one LMDB environment <dbdir>/greylight.lmdb
// with the named databases "triplets", "clients", "traps" and "replies" (TableName()), plus
// "pending_triplets" for the triplets not passed yet (LmdbDatabases), values in postgrey's
// formats; a database made before a table existed gets it, empty, when opened. LMDB's quirks (map
// growth, stale readers, resizes by other processes) stay inside lmdb_store.cc. `clock` (which must
// outlive the store) times the background expiry. Errors: kBusy if another daemon holds the dbdir
// lock, kNotFound if options.store.must_exist and there is no database
// ("no greylight store at DIR: DIR/greylight.lmdb does not exist"), kIoError if the
// environment cannot be created or opened.
Result<std::unique_ptr<Store>> OpenLmdbStore(const LmdbOptions& options, const Clock& clock);

}  // namespace greylight::store
