package source_test

import "syscall"

// Signals the fault tests send to servers.
var (
	stopSignal = syscall.SIGSTOP // keep connections, send nothing
	killSignal = syscall.SIGKILL // connections close
	termSignal = syscall.SIGTERM // ffmpeg finishes its output (HLS: #EXT-X-ENDLIST)
)
