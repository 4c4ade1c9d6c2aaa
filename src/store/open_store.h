#pragma once

#include <memory>
#include <string>

#include "store/store.h"
#include "store/store_config.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::store {

// Opens the backend `config.uri` names: the one place that knows every backend and URI.
//   "lmdb:"                 LMDB in config.dbdir
//   "lmdb:PATH"             LMDB in the directory PATH ("lmdb:///abs" is "/abs")
//   "redis://...", "redis+unix://...", "redis+sentinel://..."   one Redis (redis_uri.h)
//   "redis+cluster://seed[,seed...][?password=...]"             a Redis Cluster
// Errors: kInvalidArgument naming the problem for a malformed or unknown URI, a missing
// dbdir, a non-positive timeout or a configuration the Redis server refuses; kBusy when
// another daemon holds the LMDB dbdir; kNotFound when config.must_exist and there is no LMDB
// database ("no greylight store at DIR: DIR/greylight.lmdb does not exist"); kUnavailable
// when config.must_exist and Redis does not answer; kIoError when the LMDB environment
// cannot be opened. Without must_exist an unreachable Redis is not an error: the store
// reconnects in the background and fails requests meanwhile. `clock` must outlive the
// store.
Result<std::unique_ptr<Store>> OpenStore(const StoreConfig& config, const Clock& clock);

// Whether `uri` names a Redis Cluster (a valid redis+cluster:// URI), whose checks need
// every key of one request on one slot (docs/design.md, "Redis Cluster").
bool IsClusterUri(const std::string& uri);

// A string naming the place `config.uri` refers to, equal for two configurations that name
// the same store (LMDB paths are made absolute and canonical), e.g. for `greylight migrate`
// to refuse copying a store onto itself.
std::string StoreIdentity(const StoreConfig& config);

}  // namespace greylight::store
