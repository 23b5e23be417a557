// Client-side encryption of an RBD image with librbd's own LUKS (rbd_encryption_format /
// rbd_encryption_load): the key of a volume, formatting and opening an image with it, and the
// record on the image (its metadata) that lets any host report the volume as encrypted (format,
// libvirt secret, guest-visible size) without knowing the key.
//
// librbd keeps the LUKS header at the start of the image: the guest sees the image's raw size
// minus the header (the data offset). A volume of capacity C is an image of C + header bytes.
// Ceph 16 encrypts flat images only (a clone reads its parent with the clone's own key); Ceph 18
// adds layered encryption: a clone has its own key, over a plain or an encrypted parent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <rbd/librbd.h>

#include "base/status.hpp"

namespace rbdclone {

enum class LuksFormat { Luks1, Luks2 };
const char *luks_name(LuksFormat f); // "luks", "luks2" (libvirt's names)

// Bytes of a passphrase, wiped when they go. Never logged, never in a message.
class Passphrase {
  public:
    Passphrase(const void *data, size_t size);
    ~Passphrase();
    Passphrase(const Passphrase &) = delete;
    Passphrase &operator=(const Passphrase &) = delete;
    const char *data() const { return bytes_.get(); }
    size_t size() const { return size_; }

  private:
    std::unique_ptr<char[]> bytes_;
    size_t size_;
};

// The key of one volume: its format, the libvirt secret that holds the passphrase (named in
// messages and kept in the record) and the passphrase.
struct VolumeKey {
    LuksFormat format = LuksFormat::Luks2;
    std::string secret_uuid;
    std::shared_ptr<const Passphrase> passphrase;
};

// What an encrypted image says of itself without the key: its image metadata
// "rbdclone.encryption" = "<format> <secret uuid> <header bytes>".
struct EncryptionRecord {
    LuksFormat format = LuksFormat::Luks2;
    std::string secret_uuid;
    uint64_t header_bytes = 0; // raw size - guest-visible size
};
inline constexpr const char *kEncryptionMetadataKey = "rbdclone.encryption";
std::string encode_record(const EncryptionRecord &r);
std::optional<EncryptionRecord> decode_record(const std::string &text);

// The record of an open image (none: a plain image, or one encrypted by someone else).
Result<std::optional<EncryptionRecord>> read_record(rbd_image_t img, const std::string &label);

// Whether this librbd gives a clone its own key (layered encryption, Ceph >= 18).
bool layered_encryption();

// Formats img (new, or a clone nobody uses yet) with key, sized so that the guest sees
// `capacity` bytes, and writes the record. The encryption stays loaded on img: what is
// written through it next is encrypted. Returns the header's size (guest offset 0 is there).
// librbd 16 decrypts the unwritten rest of an object it stores into noise: write whole
// objects (CopyOptions::dense_unit).
Result<uint64_t> format_image(rbd_image_t img, const VolumeKey &key, uint64_t capacity, const std::string &label);

// Layered encryption (Ceph 18) shows a clone's guest its parent's bytes only up to the
// parent's size minus the clone's header: the parent's last bytes would read as zeros. They
// are read from the fresh clone before it is formatted (read_parent_tail) and written back
// through its key after (restore_parent_tail): the guest then sees every byte of the parent.
struct ParentTail {
    uint64_t offset = 0; // where bytes start, in the parent (and the guest)
    std::string bytes;   // up to the parent's end
};
Result<ParentTail> read_parent_tail(rbd_image_t clone, uint64_t parent_size, const std::string &label);
Status restore_parent_tail(rbd_image_t clone, const ParentTail &tail, uint64_t header, const std::string &label);

// Loads the key on an open image: reads and writes through img are the guest's bytes. A
// wrong passphrase is RBDC_ERR_AUTH naming the image and the secret.
Status load_key(rbd_image_t img, const VolumeKey &key, const std::string &label);

} // namespace rbdclone
