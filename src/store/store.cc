#include "store/store.h"

namespace greylight::store {

std::string_view TableName(Table table) {
  return table == Table::kTriplets ? "triplets" : "clients";
}

}  // namespace greylight::store
