package minioserver

import "syscall"

// tmpfsMagic is the f_type statfs(2) gives for a tmpfs.
const tmpfsMagic = 0x01021994

// ramBacked reports whether dir is a writable tmpfs with at least free bytes available.
func ramBacked(dir string, free uint64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Type != tmpfsMagic {
		return false
	}
	return st.Bavail*uint64(st.Bsize) >= free && syscall.Access(dir, 2) == nil
}
