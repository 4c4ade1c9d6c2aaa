#include "util/log.h"

#include <gtest/gtest.h>

#include <string>

namespace greylight::log {
namespace {

TEST(LogEscapeTest, PostgreyEscapingHexEncodesControlBytesCommasAndNonAscii) {
  EXPECT_EQ(Escaped(""), "");
  EXPECT_EQ(Escaped("user@example.org"), "user@example.org");
  EXPECT_EQ(Escaped(",a,,b,"), "%2Ca%2C%2Cb%2C");
  EXPECT_EQ(Escaped(std::string("\0\x1f \x7e\x7f\x80\xff", 7)), "%00%1F ~%7F%80%FF");
  EXPECT_EQ(Escaped("forged@x\n%"), "forged@x%0A%");
}

TEST(LogEscapeTest, PostgreyEscapingOfEveryByteDecodesBackToIt) {
  for (int byte = 0; byte < 256; ++byte) {
    const std::string value = std::string("a") + static_cast<char>(byte) + "b";
    const std::string escaped = Escaped(value);
    const bool kept = byte >= 0x20 && byte < 0x7f && byte != ',';
    if (kept) {
      EXPECT_EQ(escaped, value) << byte;
      continue;
    }
    ASSERT_EQ(escaped.size(), 5u) << byte;
    EXPECT_EQ(escaped.front(), 'a');
    EXPECT_EQ(escaped.back(), 'b');
    EXPECT_EQ(escaped[1], '%');
    EXPECT_EQ(std::stoi(escaped.substr(2, 2), nullptr, 16), byte);
  }
}

TEST(LogEscapeTest, AppendEscapedAppendsToWhatIsThere) {
  std::string line = "sender=";
  AppendEscaped(line, "a,b");
  EXPECT_EQ(line, "sender=a%2Cb");
}

TEST(LogEscapeTest, JsonStringEscapesQuotesBackslashesAndControlBytes) {
  auto json = [](std::string_view value) {
    std::string out;
    AppendJsonString(out, value);
    return out;
  };
  EXPECT_EQ(json(""), "\"\"");
  EXPECT_EQ(json("a,b"), "\"a,b\"");
  EXPECT_EQ(json("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(json(std::string("\0\n\x7f\xc3", 4)), "\"\\u0000\\u000a\\u007f\\u00c3\"");
  EXPECT_EQ(json("\"x"), "\"\\\"x\"");
  EXPECT_EQ(json("x\x01"), "\"x\\u0001\"");
}

}  // namespace
}  // namespace greylight::log
