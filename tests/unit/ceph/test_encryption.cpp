#include <gtest/gtest.h>

#include "ceph/encryption.hpp"

using namespace rbdclone;

TEST(EncryptionRecord, RoundTrips)
{
    for (auto f : {LuksFormat::Luks1, LuksFormat::Luks2}) {
        EncryptionRecord r{f, "3c0c8d6e-7a1b-4f57-9d1e-0a11ad0c0001", 16777216};
        auto back = decode_record(encode_record(r));
        ASSERT_TRUE(back);
        EXPECT_EQ(back->format, f);
        EXPECT_EQ(back->secret_uuid, r.secret_uuid);
        EXPECT_EQ(back->header_bytes, r.header_bytes);
    }
    EXPECT_EQ(encode_record({LuksFormat::Luks2, "u", 4194304}), "luks2 u 4194304");
    auto none = decode_record(encode_record({LuksFormat::Luks1, "", 2}));
    ASSERT_TRUE(none);
    EXPECT_EQ(none->secret_uuid, "");
}

TEST(EncryptionRecord, WhatIsNotARecord)
{
    for (const char *bad : {"", "luks2", "luks2 uuid", "luks3 uuid 1", "luks2 uuid x"})
        EXPECT_FALSE(decode_record(bad)) << bad;
}

TEST(Passphrase, KeepsItsBytesIncludingZeros)
{
    const char raw[] = {'a', '\0', 'b'};
    Passphrase p(raw, sizeof(raw));
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(std::string(p.data(), p.size()), std::string(raw, 3));
    EXPECT_EQ(luks_name(LuksFormat::Luks1), std::string("luks"));
    EXPECT_EQ(luks_name(LuksFormat::Luks2), std::string("luks2"));
}
