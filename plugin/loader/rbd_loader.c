/* The rbd storage backend module that libvirtd loads: it picks the rbdclone module built for
 * the libvirt it finds itself in, or hands over to libvirt's stock rbd module.
 *
 * libvirt's private symbols are versioned by the upstream version (LIBVIRT_PRIVATE_11.3.0), and
 * the storage structures the glue touches change between versions, so a module is built per
 * libvirt version. This loader touches nothing of libvirt's at link time (it loads into any
 * libvirt) and, when libvirt calls virStorageBackendRBDRegister:
 *
 *   1. asks the running libvirt its version (virGetVersion, a public API since 0.0.3);
 *   2. loads DIR/rbdclone/rbdclone-libvirt-X.Y.Z.so, DIR being where this loader was loaded
 *      from, and calls its virStorageBackendRBDRegister;
 *   3. when there is no such module, or it does not load, loads DIR/libvirt_storage_backend_rbd
 *      .so.stock (where the Debian package diverts libvirt's own module) instead, and says so
 *      once, at WARNING, in the daemon's log;
 *   4. never fails registration: a register function returning < 0 takes libvirt's whole
 *      storage driver down with it, so only the chosen module's own failure is returned.
 *
 * Its log lines go through libvirt's virLogMessage, looked up at run time (its signature and
 * virLogSource's layout are the same from libvirt 1.2 to 12.x); syslog when it is missing. */
#define _GNU_SOURCE 1 /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define LOADER_LOG_NAME "storage.storage_backend_rbd"
#define REGISTER_SYMBOL "virStorageBackendRBDRegister"
#define BACKEND_FILE "libvirt_storage_backend_rbd.so"
#define MODULE_SUBDIR "rbdclone"

/* libvirt's src/util/virlog.h: struct _virLogSource and virLogPriority. */
struct loader_log_source {
    const char *name;
    unsigned int priority;
    unsigned int serial;
};
enum { LOADER_LOG_INFO = 2, LOADER_LOG_WARN = 3, LOADER_LOG_ERROR = 4 };

typedef void (*log_message_fn)(struct loader_log_source *source, int priority,
                               const char *filename, int linenr, const char *funcname,
                               void *metadata, const char *fmt, ...);
typedef int (*get_version_fn)(unsigned long *lib_ver, const char *type, unsigned long *type_ver);
typedef int (*register_fn)(void);

static struct loader_log_source loader_log = { LOADER_LOG_NAME, LOADER_LOG_ERROR, 0 };

static void loader_say(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
loader_say(int priority, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    log_message_fn log_message = (log_message_fn)dlsym(RTLD_DEFAULT, "virLogMessage");

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (log_message) {
        log_message(&loader_log, priority, __FILE__, __LINE__, __func__, NULL, "%s", text);
        return;
    }
    syslog(priority >= LOADER_LOG_ERROR ? LOG_ERR : priority == LOADER_LOG_WARN ? LOG_WARNING
                                                                                : LOG_INFO,
           "%s: %s", LOADER_LOG_NAME, text);
}

/* The directory this loader was loaded from (libvirt's storage backend directory, or the one
 * LIBVIRT_STORAGE_BACKEND_DIR names), without resolving links: a test directory of links is
 * searched as itself. */
static int
loader_dir(char *dir, size_t size)
{
    Dl_info info;
    const char *slash;

    if (!dladdr((void *)loader_dir, &info) || !info.dli_fname || !(slash = strrchr(info.dli_fname, '/')))
        return -1;
    if ((size_t)(slash - info.dli_fname) >= size)
        return -1;
    memcpy(dir, info.dli_fname, slash - info.dli_fname);
    dir[slash - info.dli_fname] = '\0';
    return 0;
}

/* Loads PATH and calls its register function. Returns 1 when it was called (its result in
 * *RESULT), 0 when PATH could not be loaded (why in WHY). */
static int
call_register(const char *path, int *result, char *why, size_t why_size)
{
    void *handle;
    register_fn reg;
    const char *err;

    /* As libvirt loads modules (virModuleLoad): resolved now, visible to later modules. */
    handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        err = dlerror();
        snprintf(why, why_size, "%s", err ? err : "dlopen failed");
        return 0;
    }
    reg = (register_fn)dlsym(handle, REGISTER_SYMBOL);
    if (!reg) {
        snprintf(why, why_size, "%s does not export %s", path, REGISTER_SYMBOL);
        return 0;   /* never dlclose'd: harmless, and what libvirt does with its modules too */
    }
    *result = reg();
    return 1;
}

int virStorageBackendRBDRegister(void) __attribute__((visibility("default")));

int
virStorageBackendRBDRegister(void)
{
    char dir[PATH_MAX], module[PATH_MAX + 64], stock[PATH_MAX + 64], version[32];
    char why[PATH_MAX + 256] = "";
    unsigned long lib_ver = 0;
    int result = 0;
    get_version_fn get_version = (get_version_fn)dlsym(RTLD_DEFAULT, "virGetVersion");

    if (loader_dir(dir, sizeof(dir)) < 0) {
        loader_say(LOADER_LOG_ERROR, "rbdclone: cannot tell which directory the rbd backend "
                                     "loader was loaded from; no rbd storage backend");
        return 0;
    }
    snprintf(stock, sizeof(stock), "%s/%s.stock", dir, BACKEND_FILE);

    if (!get_version || get_version(&lib_ver, NULL, NULL) < 0 || lib_ver == 0) {
        snprintf(version, sizeof(version), "(unknown)");
        snprintf(why, sizeof(why), "virGetVersion did not answer");
    } else {
        snprintf(version, sizeof(version), "%lu.%lu.%lu", lib_ver / 1000000,
                 lib_ver / 1000 % 1000, lib_ver % 1000);
        snprintf(module, sizeof(module), "%s/%s/rbdclone-libvirt-%s.so", dir, MODULE_SUBDIR, version);
        if (access(module, F_OK) < 0) {
            snprintf(why, sizeof(why), "%s does not exist", module);
        } else if (call_register(module, &result, why, sizeof(why))) {
            loader_say(LOADER_LOG_INFO, "rbdclone: loaded %s for libvirt %s", module, version);
            return result;
        }
    }

    /* The stock module serves: rbd pools keep working, without rbdclone's features. */
    loader_say(LOADER_LOG_WARN,
               "rbdclone: no rbdclone module matches libvirt %s (%s); libvirt's stock rbd "
               "backend (%s) serves rbd pools instead. Build rbdclone for libvirt %s "
               "(README: 'Another libvirt version'), install it and restart the daemon",
               version, why, stock, version);
    if (call_register(stock, &result, why, sizeof(why)))
        return result;
    loader_say(LOADER_LOG_ERROR, "rbdclone: the stock rbd backend did not load either (%s); "
                                 "rbd pools cannot be used until one of them is installed", why);
    return 0;
}
