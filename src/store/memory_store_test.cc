#include "store/memory_store.h"

#include "store/store_conformance.h"

namespace greylight::store {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest,
                         testing::Values(StoreFactory{"memory",
                                                      [](const policy::GreylistTiming& timing) {
                                                        return std::unique_ptr<Store>(
                                                            new MemoryStore(timing));
                                                      }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace greylight::store
