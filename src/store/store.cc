#include "store/store.h"

namespace greylight::store {

std::string_view TableName(Table table) {
  switch (table) {
    case Table::kTriplets: return "triplets";
    case Table::kClients: return "clients";
    case Table::kTraps: return "traps";
  }
  return "";
}

std::optional<Table> TableNamed(std::string_view name) {
  for (Table table : kAllTables) {
    if (TableName(table) == name) return table;
  }
  return std::nullopt;
}

}  // namespace greylight::store
