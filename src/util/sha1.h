#pragma once

#include <string>
#include <string_view>

namespace greylight {

// Lowercase hex SHA-1 of `data` (40 characters), as postgrey's --privacy stores keys.
std::string Sha1Hex(std::string_view data);

}  // namespace greylight
