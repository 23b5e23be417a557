/* The few configure results libvirt's internal headers need when compiled
 * outside libvirt's tree (the storage structs used here do not depend on
 * WITH_* macros in libvirt 9.0.0). */
#pragma once
#define WITH_RBD_LIST2 1
#define WITH_DLFCN_H 1
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
