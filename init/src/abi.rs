//! Kernel paths and magic numbers in one place (STYLE.md, "Names").

/// The kernel log; one write(2) is one record (Documentation/ABI/testing/dev-kmsg).
pub const KMSG: &str = "/dev/kmsg";
/// The system console.
pub const CONSOLE: &str = "/dev/console";
/// The kernel command line.
pub const PROC_CMDLINE: &str = "/proc/cmdline";
/// This process's view of the mount table.
pub const PROC_MOUNTINFO: &str = "/proc/self/mountinfo";
/// `console_loglevel default_message_loglevel minimum default` (proc_sys_kernel(5)).
pub const PROC_PRINTK: &str = "/proc/sys/kernel/printk";
/// `on`, `off` or `ratelimit` for writes to /dev/kmsg (Documentation/admin-guide/sysctl/kernel.rst).
pub const PROC_PRINTK_DEVKMSG: &str = "/proc/sys/kernel/printk_devkmsg";
/// The command-line key that pins `printk_devkmsg`; when an operator set it,
/// liftoff leaves the sysctl alone.
pub const PRINTK_DEVKMSG_KEY: &str = "printk.devkmsg";

/// The running kernel's release, the folder under /lib/modules.
pub const PROC_OSRELEASE: &str = "/proc/sys/kernel/osrelease";

/// `PROC_SUPER_MAGIC` from include/uapi/linux/magic.h.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// `RAMFS_MAGIC` (include/uapi/linux/magic.h): the initramfs's rootfs
/// without `CONFIG_TMPFS`.
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// `TMPFS_MAGIC`: the initramfs's rootfs when the kernel has tmpfs.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// `BLKROSET`, `_IO(0x12, 93)` (include/uapi/linux/fs.h): set a block
/// device read-only; the argument is a pointer to an `int`.
pub const BLKROSET: u32 = 0x125d;

/// syslog facility `LOG_DAEMON` (3 << 3): what systemd uses for PID 1's own
/// kmsg records, so log readers file liftoff's lines in the same place.
pub const LOG_DAEMON: u8 = 3 << 3;

/// Offsets from `SIGRTMIN` with systemd's meaning (systemd(1), "Signals").
pub mod rt {
    /// Halt.
    pub const HALT: i32 = 3;
    /// Power off.
    pub const POWEROFF: i32 = 4;
    /// Reboot.
    pub const REBOOT: i32 = 5;
    /// Halt at once, without stopping services in order.
    pub const HALT_NOW: i32 = 13;
    /// Power off at once.
    pub const POWEROFF_NOW: i32 = 14;
    /// Reboot at once.
    pub const REBOOT_NOW: i32 = 15;
}
