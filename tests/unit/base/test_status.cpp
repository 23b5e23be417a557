#include <gtest/gtest.h>

#include "base/status.hpp"

using namespace rbdclone;

TEST(DescribeRc, UsersCodesGetTheirOwnWords)
{
    EXPECT_EQ(describe_rc(-ENOENT), "does not exist");
    EXPECT_EQ(describe_rc(-ENOTEMPTY), "image has snapshots");
    EXPECT_NE(describe_rc(-EBUSY).find("watchers"), std::string::npos);
    EXPECT_NE(describe_rc(-ETIMEDOUT).find("timed out"), std::string::npos);
    EXPECT_NE(describe_rc(-EPERM).find("caps"), std::string::npos);
    EXPECT_NE(describe_rc(-ESHUTDOWN).find("blocklisted"), std::string::npos);
}

TEST(DescribeRc, OtherCodesUseStrerrorAndTheNumber)
{
    std::string s = describe_rc(-EXDEV);
    EXPECT_NE(s.find("errno 18"), std::string::npos) << s;
}

TEST(CephError, ClassifiesTimeoutsAndPermissions)
{
    EXPECT_EQ(ceph_error(-ETIMEDOUT, "x").kind, RBDC_ERR_TIMEOUT);
    EXPECT_EQ(ceph_error(-EACCES, "x").kind, RBDC_ERR_AUTH);
    EXPECT_EQ(ceph_error(-EIO, "x").kind, RBDC_ERR_SYSTEM);
}

TEST(CephError, MessageIsContextThenReason)
{
    Error e = ceph_error(-ENOENT, "failed to open RBD image 'rbd/a'");
    EXPECT_EQ(e.message, "failed to open RBD image 'rbd/a': does not exist");
    EXPECT_EQ(e.rc, -ENOENT);
}

TEST(CephError, PositiveCodeBecomesEio)
{
    EXPECT_EQ(ceph_error(5, "x").rc, -EIO);
}

TEST(Result, CarriesValueOrError)
{
    Result<int> ok(3);
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(ok.value(), 3);
    Result<int> bad(plain_error(RBDC_ERR_INVALID_ARG, -EINVAL, "nope"));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message, "nope");
    Status s;
    EXPECT_TRUE(s.ok());
    Status f(plain_error(RBDC_ERR_INTERNAL, -EIO, "x"));
    EXPECT_FALSE(f.ok());
}
