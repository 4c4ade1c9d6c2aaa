#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "store/store.h"

namespace greylight::store {

// The behaviour every Store backend must show. A backend's test file instantiates the
// suite with a factory:
//   INSTANTIATE_TEST_SUITE_P(Lmdb, StoreConformanceTest, testing::Values(StoreFactory{...}));
struct StoreFactory {
  std::string name;
  // Creates an empty store with `timing`. Each call gets fresh, isolated state.
  std::function<std::unique_ptr<Store>(const policy::GreylistTiming& timing)> create;
  friend void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }
};

class StoreConformanceTest : public testing::TestWithParam<StoreFactory> {
 protected:
  std::unique_ptr<Store> Create(const policy::GreylistTiming& timing = {}) {
    return GetParam().create(timing);
  }
};

}  // namespace greylight::store
