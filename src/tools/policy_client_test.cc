#include "tools/policy_client.h"

#include <gtest/gtest.h>

namespace greylight::tools {
namespace {

TEST(PolicyServerAddressTest, ReadsPostfixNotation) {
  auto inet = PolicyServerAddress::Parse("inet:127.0.0.1:10023");
  ASSERT_TRUE(inet.ok());
  EXPECT_EQ(inet->kind, PolicyServerAddress::Kind::kInet);
  EXPECT_EQ(inet->host, "127.0.0.1");
  EXPECT_EQ(inet->port, "10023");
  EXPECT_EQ(inet->ToString(), "inet:127.0.0.1:10023");

  auto v6 = PolicyServerAddress::Parse("inet:[::1]:10023");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "inet:[::1]:10023");

  auto bare = PolicyServerAddress::Parse("localhost:10023");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host, "localhost");

  auto unix_socket = PolicyServerAddress::Parse("unix:/run/greylight/socket");
  ASSERT_TRUE(unix_socket.ok());
  EXPECT_EQ(unix_socket->kind, PolicyServerAddress::Kind::kUnix);
  EXPECT_EQ(unix_socket->path, "/run/greylight/socket");
  EXPECT_EQ(PolicyServerAddress::Parse("/run/x.sock")->path, "/run/x.sock");
}

TEST(PolicyServerAddressTest, RejectsWhatIsNoAddress) {
  for (std::string_view bad : {"", "inet:", "10023", "inet:host:", "inet::10023", "host:port",
                               "unix:", "inet:127.0.0.1:10023x"}) {
    EXPECT_FALSE(PolicyServerAddress::Parse(bad).ok()) << bad;
  }
}

TEST(FormatPolicyRequestTest, WritesOneLinePerAttributeAndTheEmptyLine) {
  auto request = FormatPolicyRequest({{"client_address", "192.0.2.1"}, {"sender", ""}});
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(*request, "request=smtpd_access_policy\nclient_address=192.0.2.1\nsender=\n\n");
}

TEST(FormatPolicyRequestTest, RefusesWhatWouldBreakTheProtocol) {
  EXPECT_FALSE(FormatPolicyRequest({{"sender", "a\nrecipient=b"}}).ok());
  EXPECT_FALSE(FormatPolicyRequest({{"a=b", "c"}}).ok());
  EXPECT_FALSE(FormatPolicyRequest({{"", "c"}}).ok());
}

}  // namespace
}  // namespace greylight::tools
