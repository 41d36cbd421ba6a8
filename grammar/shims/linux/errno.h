/* SPDX-License-Identifier: GPL-2.0 */
/* tdxproof shim: the Linux error numbers the TDX code may name. */
#ifndef TDXPROOF_SHIM_LINUX_ERRNO_H
#define TDXPROOF_SHIM_LINUX_ERRNO_H

#define EPERM		1
#define EIO		5
#define ENOMEM		12
#define EFAULT		14
#define EBUSY		16
#define ENODEV		19
#define EINVAL		22
#define ENOSPC		28
#define EOPNOTSUPP	95

#endif /* TDXPROOF_SHIM_LINUX_ERRNO_H */
