#include "store/store.h"

namespace greylight::store {

std::string_view TableName(Table table) {
  switch (table) {
    case Table::kTriplets:
      return "triplets";
    case Table::kClients:
      return "clients";
    case Table::kTraps:
      return "traps";
    case Table::kReplies:
      return "replies";
  }
  return "";
}

}  // namespace greylight::store
