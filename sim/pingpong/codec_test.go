package pingpong

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecode: Decode never panics, and whatever it accepts encodes back to
// the same bytes.
func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{nil, {'P'}, {'P', 1, 2, 3, 4, 5, 6, 7, 8}, {'O', 0, 0, 0, 0, 0, 0, 0, 0}, {'X', 0, 0, 0, 0, 0, 0, 0, 0}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Codec{}.Decode(b)
		if err != nil {
			return
		}
		out, err := Codec{}.Encode(nil, m)
		if err != nil {
			t.Fatalf("decoded %v but cannot encode it: %v", m, err)
		}
		if diff := cmp.Diff(b, out); diff != "" {
			t.Fatalf("round trip changed the bytes (-in +out):\n%s", diff)
		}
	})
}

func TestCodecRejectsOtherTypes(t *testing.T) {
	if _, err := (Codec{}).Encode(nil, "hello"); err == nil {
		t.Error("encoded a string")
	}
}
