/*
 * bcryptprimitives.dll shim for Wine 8, which lacks ProcessPrng.
 *
 * Go >= 1.24's Windows runtime takes its random bytes from
 * bcryptprimitives.dll!ProcessPrng and refuses to start without it. This DLL
 * exports ProcessPrng on top of advapi32's SystemFunction036 (RtlGenRandom),
 * which Wine has. It is for running tests under Wine only, never shipped.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll processprng.c
 */
#include <windows.h>

typedef BOOLEAN (WINAPI *rtlgenrandom_fn)(PVOID, ULONG);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	static rtlgenrandom_fn gen;
	if (gen == NULL) {
		HMODULE advapi = LoadLibraryA("advapi32.dll");
		if (advapi == NULL)
			return FALSE;
		gen = (rtlgenrandom_fn)GetProcAddress(advapi, "SystemFunction036");
		if (gen == NULL)
			return FALSE;
	}
	/* RtlGenRandom takes a ULONG length: feed larger requests in pieces. */
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!gen(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
