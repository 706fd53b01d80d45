package windows

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

// x/sys/windows has no PeekNamedPipe.
var procPeekNamedPipe = windows.NewLazySystemDLL("kernel32.dll").NewProc("PeekNamedPipe")

// peekAvailable returns the number of bytes waiting to be read from the pipe
// h, without reading them.
func peekAvailable(h windows.Handle) (uint32, error) {
	var avail uint32
	r, _, e := procPeekNamedPipe.Call(uintptr(h), 0, 0, 0, uintptr(unsafe.Pointer(&avail)), 0)
	if r == 0 {
		return 0, e
	}
	return avail, nil
}

// filePipeLocalInformation is FILE_INFORMATION_CLASS FilePipeLocalInformation,
// which x/sys/windows does not name.
const filePipeLocalInformation = 24

// pipeLocalInformation is FILE_PIPE_LOCAL_INFORMATION.
type pipeLocalInformation struct {
	NamedPipeType          uint32
	NamedPipeConfiguration uint32
	MaximumInstances       uint32
	CurrentInstances       uint32
	InboundQuota           uint32
	ReadDataAvailable      uint32
	OutboundQuota          uint32
	WriteQuotaAvailable    uint32
	NamedPipeState         uint32
	NamedPipeEnd           uint32
}

// pipeInfo describes the pipe handle h: which end it is and which ways data
// flows. It fails for a handle that is not a pipe.
func pipeInfo(h windows.Handle) (pipeLocalInformation, error) {
	var (
		info pipeLocalInformation
		iosb windows.IO_STATUS_BLOCK
	)
	err := windows.NtQueryInformationFile(h, &iosb, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), filePipeLocalInformation)
	return info, err
}
