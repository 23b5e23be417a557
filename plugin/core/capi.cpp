// The C interface of include/rbdclone/core.h.  Each entry point converts its arguments,
// calls the core (a request of requests.hpp; the pool registry for connecting, finding and
// forgetting a pool; a check of a name or a policy) and turns a Result into rc +
// rbdc_status.  No exception crosses this boundary.
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "base/log.hpp"
#include "ceph/names.hpp"
#include "ceph/pool.hpp"
#include "requests.hpp"

using namespace rbdclone;

struct rbdc_pool {
    std::shared_ptr<Pool> pool;
};

struct rbdc_stream {
    std::unique_ptr<UploadIntake> up;     // one of the two
    std::shared_ptr<DownloadStream> down;
};

namespace {

void clear(rbdc_status *st)
{
    if (st) {
        st->rc = 0;
        st->kind = RBDC_OK;
        st->message[0] = '\0';
    }
}

int fail(rbdc_status *st, const Error &e)
{
    int rc = e.rc < 0 ? e.rc : -EIO;
    if (st) {
        st->rc = rc;
        st->kind = e.kind == RBDC_OK ? RBDC_ERR_INTERNAL : e.kind;
        snprintf(st->message, sizeof(st->message), "%s", e.message.c_str());
    }
    return rc;
}

// Runs f, mapping exceptions (bad_alloc, anything unexpected) to errors.
template <typename F>
int guarded(rbdc_status *st, F &&f)
{
    clear(st);
    try {
        return f();
    } catch (const std::bad_alloc &) {
        return fail(st, plain_error(RBDC_ERR_INTERNAL, -ENOMEM, "out of memory"));
    } catch (const std::exception &ex) {
        return fail(st, plain_error(RBDC_ERR_INTERNAL, -EIO, std::string("internal error: ") + ex.what()));
    } catch (...) {
        return fail(st, plain_error(RBDC_ERR_INTERNAL, -EIO, "internal error"));
    }
}

std::string str(const char *s) { return s ? s : ""; }

// Stream calls answer as libvirt's do: -1 = error, -2 = would block.
constexpr int kStreamError = -1;
constexpr int kStreamWouldBlock = -2;

template <typename F>
int stream_guarded(rbdc_status *st, F &&f)
{
    int r = guarded(st, std::forward<F>(f));
    return r < 0 && r != kStreamWouldBlock ? kStreamError : r;
}

int stream_fail(rbdc_status *st, const Error &e)
{
    fail(st, e);
    return kStreamError;
}

int stream_misuse(rbdc_status *st, const char *verb, const char *what)
{
    return stream_fail(st, plain_error(RBDC_ERR_INTERNAL, -EINVAL, cat("cannot ", verb, " ", what, " stream")));
}

int stream_bytes(rbdc_status *st, Result<std::optional<size_t>> r)
{
    if (!r)
        return stream_fail(st, r.error());
    return *r ? static_cast<int>(**r) : kStreamWouldBlock;
}

std::vector<PolicyAttribute> policy_attributes(const rbdc_policy_attr *attrs, size_t n)
{
    std::vector<PolicyAttribute> v;
    for (size_t i = 0; i < n; i++)
        v.push_back({str(attrs[i].element), str(attrs[i].name), str(attrs[i].value)});
    return v;
}

// The core's form of a key given through the C interface (none for NULL or NONE).
std::optional<VolumeKey> key_of(const rbdc_encryption *e)
{
    if (!e || e->format == RBDC_ENCRYPTION_NONE)
        return std::nullopt;
    VolumeKey k;
    k.format = e->format == RBDC_ENCRYPTION_LUKS1 ? LuksFormat::Luks1 : LuksFormat::Luks2;
    k.secret_uuid = str(e->secret_uuid);
    k.passphrase = std::make_shared<Passphrase>(e->passphrase, e->passphrase_size);
    return k;
}

const VolumeKey *ptr(const std::optional<VolumeKey> &k) { return k ? &*k : nullptr; }

void fill_info(rbdc_volume_info *out, const VolumeInfo &v)
{
    *out = rbdc_volume_info{};
    out->capacity = v.capacity;
    out->allocation = v.allocation;
    if (v.encryption) {
        out->encryption = v.encryption->format == LuksFormat::Luks1 ? RBDC_ENCRYPTION_LUKS1 : RBDC_ENCRYPTION_LUKS2;
        snprintf(out->secret_uuid, sizeof(out->secret_uuid), "%s", v.encryption->secret_uuid.c_str());
    }
}

AllocMode alloc_mode(rbdc_alloc_mode m)
{
    return m == RBDC_ALLOC_FAST_DIFF ? AllocMode::FastDiff : AllocMode::FromObjects;
}

} // namespace

extern "C" {

void rbdc_set_logger(rbdc_log_fn fn) { set_log_sink(fn); }

int rbdc_policy_check(const rbdc_policy_attr *attrs, size_t n, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto p = parse_pool_policy(policy_attributes(attrs, n));
        return p ? 0 : fail(st, p.error());
    });
}

int rbdc_pool_connect(const rbdc_pool_params *p, rbdc_pool **out, rbdc_status *st)
{
    *out = nullptr;
    return guarded(st, [&]() -> int {
        ClusterParams cp;
        cp.mon_host = str(p->mon_host);
        cp.user = str(p->auth_user);
        cp.key = str(p->auth_key);
        for (size_t i = 0; i < p->n_options; i++)
            cp.options.emplace_back(p->option_names[i], p->option_values[i]);
        auto policy = parse_pool_policy(policy_attributes(p->policy, p->n_policy));
        if (!policy)
            return fail(st, policy.error());
        PoolIdentity id{str(p->uuid), str(p->pool_name), str(p->ceph_pool)};
        auto pool = open_pool(connection_cache(), id, cp, policy.value());
        if (!pool)
            return fail(st, pool.error());
        pool_registry().put(pool.value());
        *out = new rbdc_pool{std::move(pool.value())};
        return 0;
    });
}

rbdc_pool *rbdc_pool_lookup(const char *uuid)
{
    try {
        auto p = pool_registry().find(str(uuid));
        return p ? new rbdc_pool{std::move(p)} : nullptr;
    } catch (...) {
        return nullptr;
    }
}

void rbdc_pool_unref(rbdc_pool *pool) { delete pool; }

void rbdc_pool_forget(const char *uuid)
{
    try {
        pool_registry().forget(str(uuid));
    } catch (...) {
    }
}

int rbdc_pool_stat(rbdc_pool *pool, rbdc_pool_usage *out, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto u = pool_stat_request(*pool->pool);
        if (!u)
            return fail(st, u.error());
        out->capacity = u->capacity;
        out->available = u->available;
        out->allocation = u->allocation;
        return 0;
    });
}

int rbdc_pool_list_volumes(rbdc_pool *pool, rbdc_alloc_mode mode, rbdc_volume_cb cb, void *opaque,
                           rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto s = pool_list_request(pool->pool, alloc_mode(mode),
                                   [&](const std::string &name, const VolumeInfo &v) {
                                       rbdc_volume_info ci;
                                       fill_info(&ci, v);
                                       return cb(name.c_str(), &ci, opaque) == 0;
                                   });
        return s ? 0 : fail(st, s.error());
    });
}

int rbdc_volume_info_get(rbdc_pool *pool, const char *name, rbdc_alloc_mode mode,
                         rbdc_volume_info *out, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto v = volume_info_request(*pool->pool, name, alloc_mode(mode));
        if (!v)
            return fail(st, v.error());
        fill_info(out, *v);
        return 0;
    });
}

int rbdc_image_name_check(const char *name, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        std::string why = image_name_problem(str(name));
        if (why.empty())
            return 0;
        return fail(st, plain_error(RBDC_ERR_INVALID_ARG, -EINVAL,
                                    "invalid name '" + str(name).substr(0, 64) +
                                        (str(name).size() > 64 ? "...'" : "'") + " for an RBD image: " + why));
    });
}

int rbdc_volume_create(rbdc_pool *pool, const char *name, uint64_t capacity, const rbdc_encryption *enc,
                       rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        const auto key = key_of(enc);
        auto s = create_request(*pool->pool, name, capacity, ptr(key));
        return s ? 0 : fail(st, s.error());
    });
}

int rbdc_volume_delete(rbdc_pool *pool, const char *name, int delete_snapshots, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto s = delete_request(*pool->pool, name, delete_snapshots != 0);
        if (!s)
            return fail(st, s.error());
        return s.value() ? 0 : 1;
    });
}

int rbdc_volume_resize(rbdc_pool *pool, const char *name, uint64_t capacity, int allow_shrink,
                       rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto s = resize_request(*pool->pool, name, capacity, allow_shrink != 0);
        return s ? 0 : fail(st, s.error());
    });
}

int rbdc_volume_flatten(rbdc_pool *pool, const char *name, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        auto s = flatten_request(*pool->pool, name);
        return s ? 0 : fail(st, s.error());
    });
}

int rbdc_volume_wipe(rbdc_pool *pool, const char *name, rbdc_wipe_mode mode, const rbdc_encryption *enc,
                     rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        const auto key = key_of(enc);
        auto s = wipe_request(*pool->pool, name, mode == RBDC_WIPE_TRIM ? WipeMode::Trim : WipeMode::Zero, ptr(key));
        return s ? 0 : fail(st, s.error());
    });
}

void rbdc_pool_foreach(const char *ceph_pool, rbdc_uuid_cb cb, void *opaque)
{
    std::vector<std::string> uuids;
    try {
        uuids = pool_registry().uuids(str(ceph_pool));
    } catch (...) {
        return;
    }
    for (const auto &u : uuids)
        cb(u.c_str(), opaque);
}

int rbdc_volume_create_from(rbdc_pool *dst, const char *dst_name, uint64_t capacity,
                            const rbdc_source *src, const rbdc_encryption *dst_enc, int reflink,
                            rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        SourceRequest req;
        req.is_rbd = src->is_rbd != 0;
        req.declared_format = str(src->declared_format);
        req.kind = str(src->kind);
        req.path = str(src->path);
        if (src->pool)
            req.pool = src->pool->pool;
        req.image = str(src->image);
        req.location = str(src->location);
        req.key = key_of(src->encryption);
        const auto key = key_of(dst_enc);
        auto s = create_from_request(dst->pool, str(dst_name), capacity, req, ptr(key), reflink != 0);
        return s ? 0 : fail(st, s.error());
    });
}

int rbdc_volume_upload(rbdc_pool *pool, const char *name, uint64_t offset, uint64_t length,
                       const rbdc_encryption *enc, rbdc_stream **out, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        const auto key = key_of(enc);
        auto s = upload_request(pool->pool, str(name), offset, length, ptr(key));
        if (!s)
            return fail(st, s.error());
        *out = new rbdc_stream{std::move(*s), nullptr};
        return 0;
    });
}

int rbdc_volume_download(rbdc_pool *pool, const char *name, uint64_t offset, uint64_t length, int sparse,
                         const rbdc_encryption *enc, rbdc_stream **out, rbdc_status *st)
{
    return guarded(st, [&]() -> int {
        const auto key = key_of(enc);
        auto s = download_request(pool->pool, str(name), offset, length, sparse != 0, ptr(key));
        if (!s)
            return fail(st, s.error());
        *out = new rbdc_stream{nullptr, std::move(*s)};
        return 0;
    });
}

int rbdc_stream_ready_fd(const rbdc_stream *s) { return s->up ? s->up->ready_fd() : s->down->ready_fd(); }

int rbdc_stream_send(rbdc_stream *s, const char *data, size_t n, int block, rbdc_status *st)
{
    return stream_guarded(st, [&]() -> int {
        if (!s->up)
            return stream_misuse(st, "send into", "a download");
        return stream_bytes(st, s->up->send(data, std::min<size_t>(n, INT_MAX), block != 0));
    });
}

int rbdc_stream_recv(rbdc_stream *s, char *buf, size_t n, int block, rbdc_status *st)
{
    return stream_guarded(st, [&]() -> int {
        if (!s->down)
            return stream_misuse(st, "receive from", "an upload");
        return stream_bytes(st, s->down->recv(buf, std::min<size_t>(n, INT_MAX), block != 0));
    });
}

int rbdc_stream_send_hole(rbdc_stream *s, uint64_t len, rbdc_status *st)
{
    return stream_guarded(st, [&]() -> int {
        Status r = s->up ? s->up->send_hole(len) : s->down->skip_hole(len);
        return r ? 0 : stream_fail(st, r.error());
    });
}

int rbdc_stream_in_data(rbdc_stream *s, int *in_data, uint64_t *length, rbdc_status *st)
{
    return stream_guarded(st, [&]() -> int {
        if (!s->down)
            return stream_misuse(st, "look for data in", "an upload");
        auto r = s->down->in_data();
        if (!r)
            return stream_fail(st, r.error());
        *in_data = r->data ? 1 : 0;
        *length = r->length;
        return 0;
    });
}

int rbdc_stream_finish(rbdc_stream *s, rbdc_status *st)
{
    std::unique_ptr<rbdc_stream> own(s);
    return stream_guarded(st, [&]() -> int {
        if (s->down) {
            s->down->stop();
            return 0;
        }
        Status r = s->up->finish();
        return r ? 0 : stream_fail(st, r.error());
    });
}

void rbdc_stream_abort(rbdc_stream *s)
{
    std::unique_ptr<rbdc_stream> own(s);
    if (s->up)
        s->up->abort();
    else
        s->down->stop();
}

} // extern "C"
