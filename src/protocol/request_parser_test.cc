#include "protocol/request_parser.h"

#include <gtest/gtest.h>

namespace greylight::protocol {
namespace {

constexpr std::string_view kRequest =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "client_address=192.0.2.10\n"
    "client_name=mail.example.net\n"
    "sender=alice@example.net\n"
    "recipient=bob@example.org\n"
    "etrn_domain=\n"
    "\n";

TEST(RequestParserTest, ParsesOneRequest) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed(kRequest, done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].GetOr("client_address"), "192.0.2.10");
  EXPECT_EQ(done[0].GetOr("recipient"), "bob@example.org");
  EXPECT_EQ(done[0].Get("etrn_domain"), std::optional<std::string_view>(""));
  EXPECT_FALSE(done[0].Get("instance").has_value());
  EXPECT_FALSE(parser.in_request());
}

TEST(RequestParserTest, RequestSplitAtEveryByteParsesTheSame) {
  for (size_t split = 0; split <= kRequest.size(); ++split) {
    RequestParser parser;
    std::vector<PolicyRequest> done;
    ASSERT_EQ(parser.Feed(kRequest.substr(0, split), done), ParseError::kNone) << split;
    ASSERT_EQ(parser.Feed(kRequest.substr(split), done), ParseError::kNone) << split;
    ASSERT_EQ(done.size(), 1u) << split;
    EXPECT_EQ(done[0].GetOr("sender"), "alice@example.net") << split;
    EXPECT_EQ(done[0].attribute_count(), 7u) << split;
  }
}

TEST(RequestParserTest, ByteAtATime) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  for (char c : kRequest) ASSERT_EQ(parser.Feed(std::string_view(&c, 1), done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].GetOr("client_name"), "mail.example.net");
}

TEST(RequestParserTest, PipelinedRequestsComeOutInOrder) {
  std::string two = std::string(kRequest) + "request=smtpd_access_policy\nsender=second@x\n\n";
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed(two, done), ParseError::kNone);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].GetOr("sender"), "alice@example.net");
  EXPECT_EQ(done[1].GetOr("sender"), "second@x");
}

TEST(RequestParserTest, ARecycledRequestCarriesNothingIntoTheNext) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed(kRequest, done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  parser.Recycle(std::move(done[0]));
  done.clear();
  ASSERT_EQ(parser.Feed("request=smtpd_access_policy\nsender=second@x\n\n", done),
            ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].attribute_count(), 2u);
  EXPECT_EQ(done[0].GetOr("sender"), "second@x");
  EXPECT_FALSE(done[0].Get("recipient").has_value());
}

TEST(RequestParserTest, AnOversizedRequestIsNotKeptForTheNext) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  std::string large = "request=smtpd_access_policy\n";
  for (int i = 0; i < 100; ++i) large += "ccert_subject=" + std::string(200, 'x') + "\n";
  large += "\n";
  ASSERT_EQ(parser.Feed(large, done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_GT(done[0].buffer_bytes(), RequestParser::kMaxRecycledBytes);
  parser.Recycle(std::move(done[0]));
  EXPECT_LE(parser.current_buffer_bytes(), RequestParser::kMaxRecycledBytes);

  done.clear();
  ASSERT_EQ(parser.Feed(kRequest, done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  const size_t typical = done[0].buffer_bytes();
  ASSERT_LE(typical, RequestParser::kMaxRecycledBytes);
  parser.Recycle(std::move(done[0]));
  EXPECT_EQ(parser.current_buffer_bytes(), typical);  // kept for the next request
}

TEST(RequestParserTest, RecyclingDuringAStartedRequestKeepsIt) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed(kRequest, done), ParseError::kNone);
  ASSERT_EQ(parser.Feed("request=smtpd_access_policy\nsender=next@x\n", done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  parser.Recycle(std::move(done[0]));
  done.clear();
  ASSERT_EQ(parser.Feed("recipient=r@y\n\n", done), ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].GetOr("sender"), "next@x");
  EXPECT_EQ(done[0].GetOr("recipient"), "r@y");
  EXPECT_EQ(done[0].attribute_count(), 3u);
}

TEST(RequestParserTest, CrlfAccepted) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed("request=smtpd_access_policy\r\nsender=a@b\r\n\r\n", done),
            ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].GetOr("sender"), "a@b");
}

TEST(RequestParserTest, DuplicateAttributeLastWinsAndUnknownKept) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed("request=smtpd_access_policy\nsender=first@x\nfuture_attr=1\n"
                        "sender=last@x\n\n",
                        done),
            ParseError::kNone);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].GetOr("sender"), "last@x");
}

TEST(RequestParserTest, ValueMayContainEqualsAndBeEmpty) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed("request=smtpd_access_policy\nsender=a=b=c@x\nrecipient=\n\n", done),
            ParseError::kNone);
  EXPECT_EQ(done[0].GetOr("sender"), "a=b=c@x");
  EXPECT_EQ(done[0].Get("recipient"), std::optional<std::string_view>(""));
}

TEST(RequestParserTest, ValuesTruncatedLikePostgrey) {
  std::string input = "request=smtpd_access_policy\nsender=" + std::string(600, 'a') + "\n\n";
  RequestParser parser;
  std::vector<PolicyRequest> done;
  ASSERT_EQ(parser.Feed(input, done), ParseError::kNone);
  EXPECT_EQ(done[0].GetOr("sender").size(), kPostgreyFieldLimit);
}

struct BadInput {
  std::string name;
  std::string bytes;
  ParseError error;
  friend void PrintTo(const BadInput& input, std::ostream* os) { *os << input.name; }
};

class RequestParserErrorTest : public testing::TestWithParam<BadInput> {};

TEST_P(RequestParserErrorTest, ReportsErrorAndStaysFailed) {
  ParserLimits limits;
  limits.max_line_bytes = 300;
  limits.max_attributes = 5;
  limits.max_request_bytes = 1000;
  RequestParser parser(limits);
  std::vector<PolicyRequest> done;
  EXPECT_EQ(parser.Feed(GetParam().bytes, done), GetParam().error);
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(parser.Feed(kRequest, done), GetParam().error);
  EXPECT_TRUE(done.empty());
}

INSTANTIATE_TEST_SUITE_P(
    All, RequestParserErrorTest,
    testing::Values(
        BadInput{"NoEquals", "request=smtpd_access_policy\ngarbage line\n\n",
                 ParseError::kMalformedLine},
        BadInput{"EmptyName", "request=smtpd_access_policy\n=value\n", ParseError::kMalformedLine},
        BadInput{"NulByte", std::string("request=smtpd_access_policy\nsender=a\0b\n", 39),
                 ParseError::kMalformedLine},
        BadInput{"UnknownType", "request=other\n\n", ParseError::kUnknownRequestType},
        BadInput{"MissingType", "sender=a@b\n\n", ParseError::kUnknownRequestType},
        BadInput{"EmptyRequest", "\n", ParseError::kUnknownRequestType},
        BadInput{"LongLineWithoutNewline", std::string(400, 'x'), ParseError::kLineTooLong},
        BadInput{"LongLine", "sender=" + std::string(400, 'x') + "\n", ParseError::kLineTooLong},
        BadInput{"TooManyAttributes", "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\n",
                 ParseError::kTooManyAttributes},
        BadInput{"RequestTooLarge",
                 "a=" + std::string(290, 'x') + "\nb=" + std::string(290, 'x') +
                     "\nc=" + std::string(290, 'x') + "\nd=" + std::string(290, 'x') + "\n",
                 ParseError::kRequestTooLarge}),
    [](const testing::TestParamInfo<BadInput>& info) { return info.param.name; });

// The error named is the limit crossed first in the byte stream, whatever the reads were.
ParseError ErrorWhenFedInChunks(std::string_view input, size_t chunk, ParserLimits limits) {
  RequestParser parser(limits);
  std::vector<PolicyRequest> done;
  ParseError error = ParseError::kNone;
  for (size_t at = 0; at < input.size() && error == ParseError::kNone; at += chunk) {
    error = parser.Feed(input.substr(at, chunk), done);
  }
  return error;
}

ParseError ErrorWhenSplitAt(std::string_view input, size_t split, ParserLimits limits) {
  RequestParser parser(limits);
  std::vector<PolicyRequest> done;
  ParseError error = parser.Feed(input.substr(0, split), done);
  return error != ParseError::kNone ? error : parser.Feed(input.substr(split), done);
}

// A read is looked at for NUL bytes once, as a whole: a NUL is still the error of its own line
// (and of no line before it), wherever the reads begin and end.
TEST(RequestParserTest, ANulByteIsFoundInItsLineHoweverTheInputIsSplit) {
  const std::string clean = "request=smtpd_access_policy\nsender=a@b\n\n";
  const std::string input =
      clean + clean + std::string("request=smtpd_access_policy\nrecipient=x\0y\n\n", 42) + clean;
  for (size_t chunk = 1; chunk <= input.size(); ++chunk) {
    RequestParser parser{ParserLimits{}};
    std::vector<PolicyRequest> done;
    ParseError error = ParseError::kNone;
    for (size_t at = 0; at < input.size() && error == ParseError::kNone; at += chunk) {
      error = parser.Feed(std::string_view(input).substr(at, chunk), done);
    }
    EXPECT_EQ(error, ParseError::kMalformedLine) << "reads of " << chunk << " bytes";
    EXPECT_EQ(done.size(), 2u) << "reads of " << chunk << " bytes";
    EXPECT_EQ(parser.offending_line(), std::string("recipient=x\0y", 13)) << chunk;
  }
}

TEST(RequestParserTest, TheLimitCrossedFirstIsTheErrorHoweverTheInputIsSplit) {
  ParserLimits limits;
  limits.max_line_bytes = 50;
  limits.max_request_bytes = 120;
  const std::string head = "request=smtpd_access_policy\n" + std::string(40, 'a') + "=1\n";
  struct Case {
    std::string input;
    ParseError error;
  };
  const Case cases[] = {
      // The request limit falls inside a line still shorter than the line limit.
      {head + "sender=" + std::string(60, 'x') + "\n", ParseError::kRequestTooLarge},
      {head + "sender=" + std::string(60, 'x'), ParseError::kRequestTooLarge},
      // The line limit comes first.
      {"request=smtpd_access_policy\nsender=" + std::string(200, 'x') + "\n",
       ParseError::kLineTooLong},
      // A CR right at the line limit ends an allowed line; one more byte after it does not.
      {"request=smtpd_access_policy\nsender=" + std::string(43, 'x') + "\r\n\n", ParseError::kNone},
      {"request=smtpd_access_policy\nsender=" + std::string(43, 'x') + "\ry\n",
       ParseError::kLineTooLong},
      {"request=smtpd_access_policy\nsender=" + std::string(44, 'x') + "\n",
       ParseError::kLineTooLong},
  };
  for (const Case& c : cases) {
    ASSERT_EQ(ErrorWhenFedInChunks(c.input, c.input.size(), limits), c.error) << c.input;
    for (size_t chunk = 1; chunk <= 64; ++chunk) {
      ASSERT_EQ(ErrorWhenFedInChunks(c.input, chunk, limits), c.error) << chunk << " " << c.input;
    }
    for (size_t split = 0; split <= c.input.size(); ++split) {
      ASSERT_EQ(ErrorWhenSplitAt(c.input, split, limits), c.error) << split << " " << c.input;
    }
  }
}

TEST(RequestParserTest, RequestsBeforeAnErrorAreKept) {
  RequestParser parser;
  std::vector<PolicyRequest> done;
  std::string input = std::string(kRequest) + "junk\n";
  EXPECT_EQ(parser.Feed(input, done), ParseError::kMalformedLine);
  EXPECT_EQ(done.size(), 1u);
  EXPECT_EQ(parser.offending_line(), "junk");
}

TEST(PolicyRequestTest, FormatReply) { EXPECT_EQ(FormatReply("DUNNO"), "action=DUNNO\n\n"); }

}  // namespace
}  // namespace greylight::protocol
