package kvsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flotilla-sim/flotilla/sim"
)

// Op is a key-value operation.
type Op uint8

// Operations.
const (
	OpGet    Op = 1
	OpSet    Op = 2
	OpDelete Op = 3
	// OpOpen opens an exactly-once session on a replicated server (see
	// State); it carries no key and no client or seq. The answer carries
	// the new session's id in Response.Session.
	OpOpen Op = 4
)

// maxOp is the highest op the codec knows.
const maxOp = OpOpen

func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpSet:
		return "set"
	case OpDelete:
		return "delete"
	case OpOpen:
		return "open"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Status is the outcome of a request.
type Status uint8

// Statuses. Value carries a message for StatusBadRequest and StatusError.
const (
	StatusOK         Status = 0
	StatusNotFound   Status = 1
	StatusBadRequest Status = 2
	StatusError      Status = 3
	// StatusNotLeader comes from a replicated node that is not the leader:
	// nothing was done, and Leader names the leader it knows of (-1: none).
	StatusNotLeader Status = 4
	// StatusSessionExpired comes from a replicated node that has no session
	// for the request's client (expired, or never opened): nothing was
	// done now, and whether an earlier attempt took effect is unknown.
	StatusSessionExpired Status = 5
)

// maxStatus is the highest status the codec knows.
const maxStatus = StatusSessionExpired

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusBadRequest:
		return "bad request"
	case StatusError:
		return "error"
	case StatusNotLeader:
		return "not leader"
	case StatusSessionExpired:
		return "session expired"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Limits on keys and values, checked by the codec.
const (
	MaxKey   = 64 << 10
	MaxValue = 15 << 20
)

// Request is a client's operation. ID is chosen by the client and echoed in
// the Response so a client can pipeline requests on one connection. Client
// and Seq identify the request for at-most-once sessions; zero means no
// session.
type Request struct {
	ID     uint64
	Op     Op
	Key    []byte
	Value  []byte // OpSet only
	Client uint64
	Seq    uint64
}

// Response answers the Request with the same ID. Value is the value for a
// successful get, a message for an error status, and nil otherwise.
type Response struct {
	ID     uint64
	Status Status
	Value  []byte
	// Leader is the redirect hint of StatusNotLeader (-1: unknown); it is
	// not encoded with any other status.
	Leader sim.NodeID
	// Session is the id of the session an OpOpen opened (0: none).
	Session uint64
}

// Wire format. All integers are unsigned varints (encoding/binary Uvarint)
// unless noted; byte strings are a varint length followed by the bytes.
//
//	Request:  'Q' | op u8 | flags u8 | id | [client | seq if flags&1] | key | [value if op == set]
//	Response: 'R' | status u8 | flags u8 | id | [value if flags&2] | [leader+1 if flags&4] | [session if flags&8]
//
// flags&4 is set exactly when the status is StatusNotLeader.
// Unknown flag bits, unknown ops, over-limit lengths and trailing bytes are
// errors. New optional fields get new flag bits.
const (
	tagRequest  = 'Q'
	tagResponse = 'R'

	flagSession  = 1 << 0
	flagHasValue = 1 << 1
	flagLeader   = 1 << 2
	flagSessID   = 1 << 3
)

// Codec is the sim.Codec for Request and Response messages (values or
// pointers). Decode returns values and copies what it keeps, so the input
// may be reused.
type Codec struct{}

var _ sim.Codec = Codec{}

// Encode implements sim.Codec.
func (Codec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	switch m := m.(type) {
	case Request:
		return AppendRequest(dst, &m)
	case *Request:
		return AppendRequest(dst, m)
	case Response:
		return AppendResponse(dst, &m)
	case *Response:
		return AppendResponse(dst, m)
	}
	return dst, fmt.Errorf("kvsm: cannot encode %T", m)
}

// Decode implements sim.Codec.
func (Codec) Decode(b []byte) (sim.Message, error) {
	if len(b) == 0 {
		return nil, errors.New("kvsm: empty message")
	}
	switch b[0] {
	case tagRequest:
		return DecodeRequest(b)
	case tagResponse:
		return DecodeResponse(b)
	}
	return nil, fmt.Errorf("kvsm: unknown message tag %#x", b[0])
}

// AppendRequest appends the encoding of r to dst.
func AppendRequest(dst []byte, r *Request) ([]byte, error) {
	if r.Op < OpGet || r.Op > maxOp {
		return dst, fmt.Errorf("kvsm: bad op %d", r.Op)
	}
	if r.Op == OpOpen && (len(r.Key) != 0 || r.Client != 0 || r.Seq != 0) {
		return dst, errors.New("kvsm: open request with a key, client or seq")
	}
	if len(r.Key) > MaxKey {
		return dst, fmt.Errorf("kvsm: key of %d bytes exceeds %d", len(r.Key), MaxKey)
	}
	if len(r.Value) > MaxValue {
		return dst, fmt.Errorf("kvsm: value of %d bytes exceeds %d", len(r.Value), MaxValue)
	}
	if r.Op != OpSet && len(r.Value) != 0 {
		return dst, fmt.Errorf("kvsm: %v request with a value", r.Op)
	}
	var flags byte
	if r.Client != 0 || r.Seq != 0 {
		flags |= flagSession
	}
	dst = append(dst, tagRequest, byte(r.Op), flags)
	dst = binary.AppendUvarint(dst, r.ID)
	if flags&flagSession != 0 {
		dst = binary.AppendUvarint(dst, r.Client)
		dst = binary.AppendUvarint(dst, r.Seq)
	}
	dst = appendBytes(dst, r.Key)
	if r.Op == OpSet {
		dst = appendBytes(dst, r.Value)
	}
	return dst, nil
}

// AppendResponse appends the encoding of r to dst.
func AppendResponse(dst []byte, r *Response) ([]byte, error) {
	if r.Status > maxStatus {
		return dst, fmt.Errorf("kvsm: bad status %d", r.Status)
	}
	if r.Status == StatusNotLeader && r.Leader < -1 {
		return dst, fmt.Errorf("kvsm: bad leader hint %d", r.Leader)
	}
	if len(r.Value) > MaxValue {
		return dst, fmt.Errorf("kvsm: value of %d bytes exceeds %d", len(r.Value), MaxValue)
	}
	var flags byte
	if r.Value != nil {
		flags |= flagHasValue
	}
	if r.Status == StatusNotLeader {
		flags |= flagLeader
	}
	if r.Session != 0 {
		flags |= flagSessID
	}
	dst = append(dst, tagResponse, byte(r.Status), flags)
	dst = binary.AppendUvarint(dst, r.ID)
	if r.Value != nil {
		dst = appendBytes(dst, r.Value)
	}
	if flags&flagLeader != 0 {
		dst = binary.AppendUvarint(dst, uint64(int64(r.Leader)+1))
	}
	if flags&flagSessID != 0 {
		dst = binary.AppendUvarint(dst, r.Session)
	}
	return dst, nil
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// reader consumes an encoding, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("kvsm: "+format, args...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("message truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// header reads the three bytes that open a request or a response: the
// tag (which must be tag), the op or status, and the flags.
func (r *reader) header(tag byte, what string) (kind, flags byte) {
	if r.byte() != tag {
		r.fail("not a %s", what)
	}
	return r.byte(), r.byte()
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a length-prefixed string, still aliasing the input; the
// limit is checked before anything else.
func (r *reader) bytes(limit int, what string) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) {
		r.fail("%s of %d bytes exceeds %d", what, n, limit)
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s of %d bytes but only %d left", what, n, len(r.b))
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
}

// own copies the given slices into one allocation.
func own(parts ...*[]byte) {
	n := 0
	for _, p := range parts {
		n += len(*p)
	}
	buf := make([]byte, 0, n)
	for _, p := range parts {
		if *p == nil {
			continue
		}
		start := len(buf)
		buf = append(buf, *p...)
		*p = buf[start:len(buf):len(buf)]
	}
}

// DecodeRequest decodes a Request. It never panics and copies the key and
// value out of b.
func DecodeRequest(b []byte) (Request, error) {
	r := reader{b: b}
	var q Request
	op, flags := r.header(tagRequest, "request")
	q.Op = Op(op)
	if r.err == nil && (q.Op < OpGet || q.Op > maxOp) {
		r.fail("bad op %d", q.Op)
	}
	if flags&^flagSession != 0 {
		r.fail("unknown request flags %#x", flags)
	}
	q.ID = r.uvarint()
	if flags&flagSession != 0 {
		q.Client = r.uvarint()
		q.Seq = r.uvarint()
	}
	q.Key = r.bytes(MaxKey, "key")
	if q.Op == OpOpen && (len(q.Key) != 0 || flags&flagSession != 0) {
		r.fail("open request with a key, client or seq")
	}
	if q.Op == OpSet {
		q.Value = r.bytes(MaxValue, "value")
	}
	r.end()
	if r.err != nil {
		return Request{}, r.err
	}
	own(&q.Key, &q.Value)
	return q, nil
}

// DecodeResponse decodes a Response. It never panics and copies the value
// out of b.
func DecodeResponse(b []byte) (Response, error) {
	r := reader{b: b}
	var p Response
	status, flags := r.header(tagResponse, "response")
	p.Status = Status(status)
	if r.err == nil && p.Status > maxStatus {
		r.fail("bad status %d", p.Status)
	}
	if flags&^(flagHasValue|flagLeader|flagSessID) != 0 {
		r.fail("unknown response flags %#x", flags)
	}
	if r.err == nil && (flags&flagLeader != 0) != (p.Status == StatusNotLeader) {
		r.fail("leader hint with status %v", p.Status)
	}
	p.ID = r.uvarint()
	if flags&flagHasValue != 0 {
		p.Value = r.bytes(MaxValue, "value")
	}
	if flags&flagLeader != 0 {
		l := r.uvarint()
		if r.err == nil && l > 1<<31 {
			r.fail("leader hint %d out of range", l)
		}
		p.Leader = sim.NodeID(int64(l) - 1)
	}
	if flags&flagSessID != 0 {
		p.Session = r.uvarint()
		if r.err == nil && p.Session == 0 {
			r.fail("session id 0")
		}
	}
	r.end()
	if r.err != nil {
		return Response{}, r.err
	}
	own(&p.Value)
	return p, nil
}
