// Creating a volume from an image: vol-create-from, vol-clone and vol-create with a
// <backingStore>. One request is one CreateRequest, drawn here as its steps (as librbd draws
// its request classes, src/librbd/image/CloneRequest.h); each step is one function of
// create_request.cpp, in this order:
//
//   <start>
//      |
//      v
//   LOCATE          where the source is: a file, a volume of a pool of this daemon (an upload
//      |            still being written to it is waited for), or an rbd:// location reached
//      |            through the pool of this daemon that serves its cluster
//      v
//   INSPECT <---------------------------------------------+
//      |            the source opened once: its facts      |
//      v            (format declared and sniffed, layering,|
//   PLAN            cluster, cache identity)                |
//      |            plan_request (plan.hpp): what and why,  |
//      |            logged as the request's decision        |
//      |                                                    |
//      +--> REFUSE  the plan's error                        |
//      |                                                    |
//      +--> CLONE ---- EPERM/EACCES: the Ceph user may not snapshot the source ---+
//      |      |        (retry 1: inspected and planned again, as a copy)
//      |      |        ENOENT: the snapshot of ours chosen for reuse vanished (its last
//      |      |        clone was deleted meanwhile): INSPECT's open again, once (retry 2)
//      |      |        undo: nothing new is left behind (clone_image removes its clone)
//      |      v
//      |    GROW     a capacity above the source's grows the clone (inside clone_image;
//      |      |      undo: the clone removed)
//      |      v
//      |    POLICY   the pool's flatten policy (a background flatten)
//      |
//      |    an encrypted volume (Ceph >= 18, layered encryption): the clone is made under a
//      |    hidden name, ENCRYPTED (formatted with the volume's key, grown so that its guest
//      |    sees the capacity, the record written), then renamed; undo: the hidden clone
//      |    removed. No POLICY: flattening an encrypted clone needs its key.
//      |
//      +--> COPY ---> SEAL   the guest-visible bytes into a hidden image of the new
//      |                     volume's capacity (GROW at creation; an encrypted volume's is
//      |                     formatted with its key first), renamed to the volume's name when
//      |                     complete (image_import.hpp); undo: the hidden image removed
//      |
//      +--> CACHE --> FILL --> CLONE   the pool's image cache: a hit clones the entry; a miss
//                                      fills it first (COPY, SEAL under the entry's fill lock;
//                                      undo: the partial entry removed, the lock released)
//                                      (image_cache.hpp)
//
//   any failure: the create is remembered as failed for a minute, so that libvirt's undo
//   (deleteVol of the new name) deletes nothing that is not ours.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ceph/pool.hpp"
#include "create/image_import.hpp"
#include "create/plan.hpp"
#include "create/source.hpp"

namespace rbdclone {

// The source of a create as libvirt names it: a file or block device, a volume of a pool of
// this daemon, or an rbd:// location.
struct SourceRequest {
    bool is_rbd = false;
    std::string kind, path;        // not RBD
    std::shared_ptr<Pool> pool;    // RBD, a volume of this pool
    std::string image;             // RBD, with pool
    std::string location;          // RBD, without pool: rbd://[fsid@]pool/image[@snap]
    std::string declared_format;
    std::optional<VolumeKey> key;  // an encrypted RBD source's: it is read with it
};

class CreateRequest {
  public:
    // key: the new volume is encrypted with it (null: plain).
    CreateRequest(std::shared_ptr<Pool> dst, std::string name, uint64_t capacity, SourceRequest src,
                  const VolumeKey *key, bool reflink);
    // The whole request, its steps in order.
    Status run();

  private:
    Status locate();
    Status inspect();
    Plan plan();
    Status clone(const Plan &plan);
    Result<CloneOutcome> clone_into(const std::string &target);
    Result<std::unique_ptr<HiddenImage>> hide_if_encrypted();
    Status encrypt(std::unique_ptr<HiddenImage> hidden, uint64_t source_size);
    Status copy(const Plan &plan);
    Status via_cache(const Plan &plan);
    void policy();
    void log_decision(const std::string &what, const std::string &reason) const;
    const VolumeKey *source_key() const { return req_.key ? &*req_.key : nullptr; }

    // The request.
    std::shared_ptr<Pool> dst_;
    std::string name_, dst_label_;
    uint64_t capacity_;
    SourceRequest req_;
    const VolumeKey *key_;
    bool reflink_;
    // LOCATE: where an RBD source is read (not reachable: no pool of this daemon reaches its
    // cluster), holding what reads it open.
    RbdPlace place_;
    // INSPECT, PLAN.
    std::unique_ptr<Source> src_; // null: unreachable
    RequestFacts facts_;
    CacheIdentity cache_id_;
    std::optional<Error> snapshot_denied_; // CLONE's retry 1: the user may not snapshot it
};

// libvirt's undo of a failed create (deleteVol of its name) asks here first: true when the
// create of that name failed within the last minute (nothing of it is left to delete).
bool forget_failed_create(const Pool &dst, const std::string &dst_name);

} // namespace rbdclone
