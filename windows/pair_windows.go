package windows

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// pipeBuffer is the size of each direction's buffer in the pipe, a hint to
// the system: a larger one lets a large message cost fewer round trips.
const pipeBuffer = 64 << 10

// maxAttempts bounds how many fresh names Pair tries when a name is taken.
// With 64 random bits a second clash is all but impossible, so running out
// means someone keeps squatting on our names, or the system refuses for
// another reason that reads the same (ERROR_ACCESS_DENIED).
const maxAttempts = 8

// randomName returns a new pipe name, \\.\pipe\procpipe-<pid>-<random>.
func randomName() string {
	var b [8]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return `\\.\pipe\procpipe-` + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// userOnly returns security attributes (not inheritable) whose descriptor
// grants all access to the current process's user and to nobody else.
var userOnly = sync.OnceValues(func() (*windows.SecurityAttributes, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, os.NewSyscallError("GetTokenInformation", err)
	}
	// D:P: a protected DACL, so nothing is inherited into it; one entry
	// granting GENERIC_ALL to the user.
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;GA;;;" + u.User.Sid.String() + ")")
	if err != nil {
		return nil, os.NewSyscallError("ConvertStringSecurityDescriptorToSecurityDescriptor", err)
	}
	return &windows.SecurityAttributes{
		Length:             uint32(unsafe.Sizeof(windows.SecurityAttributes{})),
		SecurityDescriptor: sd,
	}, nil
})

// Pair returns the two ends of a new named-pipe instance, connected to each
// other. If duplex is true both ends read and write; otherwise the first end
// (the server end, PIPE_ACCESS_INBOUND) only reads and the second (the client
// end) only writes, like the read and write ends of pipe(2).
//
// The pipe admits only the current user and no remote client. Its name is
// random and the server end is created as the name's first instance, so a
// pipe someone else made under that name first is never connected to (Pair
// picks another name). The single instance is connected before Pair returns,
// so no other process can open the name afterwards.
func Pair(duplex bool) (*Conn, *Conn, error) { return newPair(duplex, randomName) }

// errTaken says that a pipe name is in use by someone else.
var errTaken = errors.New("the name is taken by another pipe")

// newPair is Pair with the name generator as a parameter, for tests.
func newPair(duplex bool, name func() string) (*Conn, *Conn, error) {
	sa, err := userOnly()
	if err != nil {
		return nil, nil, err
	}
	for attempt := 1; ; attempt++ {
		a, b, err := tryPair(duplex, name(), sa)
		if err == nil {
			return a, b, nil
		}
		// FILE_FLAG_FIRST_PIPE_INSTANCE fails with ERROR_ACCESS_DENIED
		// when the name exists; ERROR_PIPE_BUSY is what a name whose
		// instances are all taken gives.
		clash := errors.Is(err, errTaken) || errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_PIPE_BUSY)
		if !clash || attempt == maxAttempts {
			return nil, nil, fmt.Errorf("procpipe: creating a named pipe (%d attempts): %w", attempt, err)
		}
	}
}

// tryPair makes a pair on the pipe called name.
func tryPair(duplex bool, name string, sa *windows.SecurityAttributes) (*Conn, *Conn, error) {
	kinds := [2]Kind{Duplex, Duplex}
	if !duplex {
		kinds = [2]Kind{ReadOnly, WriteOnly}
	}
	server, err := createServer(name, duplex, sa)
	if err != nil {
		return nil, nil, err
	}
	a, err := wrap(server, kinds[0], true)
	if err != nil {
		return nil, nil, err
	}
	// Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE: there the instance is
	// created beside a squatter's, and opening the name could connect to
	// the squatter's. Counting the instances first catches that; on
	// Windows the count is always 1 here.
	if err := a.soleInstance(); err != nil {
		a.Close()
		return nil, nil, err
	}
	client, err := openClient(name, duplex)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	b, err := wrap(client, kinds[1], false)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	if err := a.connect(); err != nil {
		a.Close()
		b.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// soleInstance checks that the server end c is the only instance of its
// pipe name.
func (c *Conn) soleInstance() error {
	var (
		info pipeLocalInformation
		ierr error
	)
	err := c.rc.Control(func(h uintptr) { info, ierr = pipeInfo(windows.Handle(h)) })
	if err != nil {
		err = c.controlError("NtQueryInformationFile", err)
	} else if ierr != nil {
		err = os.NewSyscallError("NtQueryInformationFile", ierr)
	}
	if err != nil {
		return err
	}
	if info.CurrentInstances != 1 {
		return fmt.Errorf("procpipe: pipe %s has %d instances: %w", c.Name(), info.CurrentInstances, errTaken)
	}
	return nil
}

// createServer creates the first instance of the pipe called name, for
// overlapped I/O, in an *os.File.
func createServer(name string, duplex bool, sa *windows.SecurityAttributes) (*os.File, error) {
	name16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	var access uint32 = windows.PIPE_ACCESS_INBOUND
	if duplex {
		access = windows.PIPE_ACCESS_DUPLEX
	}
	h, err := windows.CreateNamedPipe(name16,
		access|windows.FILE_FLAG_OVERLAPPED|windows.FILE_FLAG_FIRST_PIPE_INSTANCE,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		1, pipeBuffer, pipeBuffer, 0, sa)
	if err != nil {
		return nil, os.NewSyscallError("CreateNamedPipe", err)
	}
	return os.NewFile(uintptr(h), name), nil
}

// openClient opens the client end of the pipe called name, for overlapped
// I/O, in an *os.File. The server learns no more than our identity
// (SECURITY_IDENTIFICATION): it may not act as us.
func openClient(name string, duplex bool) (*os.File, error) {
	name16, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	// A write-only client still reads the pipe's attributes, for
	// GetNamedPipeServerProcessId.
	var access uint32 = windows.GENERIC_WRITE | windows.FILE_READ_ATTRIBUTES
	if duplex {
		access = windows.GENERIC_READ | windows.GENERIC_WRITE
	}
	h, err := windows.CreateFile(name16, access, 0, nil, windows.OPEN_EXISTING,
		windows.FILE_FLAG_OVERLAPPED|windows.SECURITY_SQOS_PRESENT|windows.SECURITY_IDENTIFICATION, 0)
	if err != nil {
		return nil, os.NewSyscallError("CreateFile", err)
	}
	return os.NewFile(uintptr(h), name), nil
}

// connect completes the connection of the server end c, whose client end this
// process has opened, and checks that the client is this process.
func (c *Conn) connect() error {
	var cerr error
	err := c.rc.Control(func(h uintptr) {
		if cerr = connectNamedPipe(windows.Handle(h)); cerr != nil {
			return
		}
		var pid uint32
		if err := windows.GetNamedPipeClientProcessId(windows.Handle(h), &pid); err != nil {
			cerr = os.NewSyscallError("GetNamedPipeClientProcessId", err)
			return
		}
		if pid != windows.GetCurrentProcessId() {
			cerr = fmt.Errorf("procpipe: pipe %s was connected to by process %d", c.Name(), pid)
		}
	})
	if err != nil {
		return c.controlError("ConnectNamedPipe", err)
	}
	return cerr
}

// connectNamedPipe runs ConnectNamedPipe on the overlapped server handle h,
// whose client end this process opened already, so the call completes at
// once. If it would wait instead, our open reached another instance of the
// name, not ours: the name is taken. The OVERLAPPED's event has its low bit
// set to keep the completion off the runtime's completion port, which h is
// on.
func connectNamedPipe(h windows.Handle) error {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return os.NewSyscallError("CreateEvent", err)
	}
	defer windows.CloseHandle(ev)
	o := windows.Overlapped{HEvent: ev | 1}
	switch err = windows.ConnectNamedPipe(h, &o); err {
	case nil, windows.ERROR_PIPE_CONNECTED:
		return nil
	case windows.ERROR_IO_PENDING:
		windows.CancelIoEx(h, &o)
		var n uint32
		windows.GetOverlappedResult(h, &o, &n, true) // wait until o is no longer in use
		return fmt.Errorf("procpipe: our client end did not connect to our pipe instance: %w", errTaken)
	}
	return os.NewSyscallError("ConnectNamedPipe", err)
}
