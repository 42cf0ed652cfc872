package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/flotilla-sim/flotilla/sim"
)

// Codec encodes every raft message (peer and client) to bytes and back; it
// implements sim.Codec.
//
// Wire format: one tag byte naming the type, then the fields in declaration
// order as unsigned varints; booleans are packed into one flags byte; node
// ids are varint(id+1) so None is 0; byte strings are varint length then
// bytes; entries are varint count then {term, type byte, data} each, their
// indices implied by PrevIndex. Decode copies its input once, so the
// decoded message never aliases the caller's buffer. Encode takes
// AppendEntries and AppendEntriesReply as values or pointers (a Node sends
// pointers); Decode returns values.
type Codec struct{}

const (
	tagRequestVote byte = iota + 1
	tagRequestVoteReply
	tagAppendEntries
	tagAppendEntriesReply
	tagHeartbeat
	tagHeartbeatReply
	tagInstallSnapshot
	tagTimeoutNow
	tagPropose
	tagProposeReply
	tagRead
	tagReadReply
	tagTransferLeader
)

// MaxMessageSize bounds an encoded message Decode accepts.
const MaxMessageSize = 64 << 20

var errMalformed = errors.New("raft: malformed message")

func flags(bs ...bool) byte {
	var f byte
	for i, b := range bs {
		if b {
			f |= 1 << i
		}
	}
	return f
}

func appendID(b []byte, id sim.NodeID) []byte { return binary.AppendUvarint(b, uint64(int64(id)+1)) }

// appendReply appends the body ProposeReply and ReadReply share (ReadReply
// converts to ProposeReply: their fields are the same).
func appendReply(dst []byte, m ProposeReply) []byte {
	dst = binary.AppendUvarint(dst, m.ID)
	dst = append(dst, flags(m.OK))
	return appendID(binary.AppendUvarint(dst, m.Index), m.Leader)
}

// Encode appends the encoding of m to dst.
func (Codec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	u := binary.AppendUvarint
	switch m := m.(type) {
	case RequestVote:
		dst = append(dst, tagRequestVote)
		dst = u(u(u(dst, m.Term), m.LastIndex), m.LastTerm)
		dst = append(dst, flags(m.PreVote, m.Transfer))
	case RequestVoteReply:
		dst = append(dst, tagRequestVoteReply)
		dst = u(dst, m.Term)
		dst = append(dst, flags(m.Granted, m.PreVote))
	case AppendEntries:
		return appendAppendEntries(dst, &m)
	case *AppendEntries:
		if m == nil {
			return dst, errors.New("raft: cannot encode a nil *AppendEntries")
		}
		return appendAppendEntries(dst, m)
	case AppendEntriesReply:
		dst = appendAppendEntriesReply(dst, &m)
	case *AppendEntriesReply:
		if m == nil {
			return dst, errors.New("raft: cannot encode a nil *AppendEntriesReply")
		}
		dst = appendAppendEntriesReply(dst, m)
	case Heartbeat:
		dst = append(dst, tagHeartbeat)
		dst = u(u(u(dst, m.Term), m.Commit), m.Seq)
	case HeartbeatReply:
		dst = append(dst, tagHeartbeatReply)
		dst = u(u(dst, m.Term), m.Seq)
	case InstallSnapshot:
		dst = append(dst, tagInstallSnapshot)
		dst = u(u(u(dst, m.Term), m.Index), m.LastTerm)
		dst = u(dst, uint64(len(m.Data)))
		dst = append(dst, m.Data...)
	case TimeoutNow:
		dst = append(dst, tagTimeoutNow)
		dst = u(dst, m.Term)
	case Propose:
		dst = append(dst, tagPropose)
		dst = u(dst, m.ID)
		dst = u(dst, uint64(len(m.Data)))
		dst = append(dst, m.Data...)
	case ProposeReply:
		dst = appendReply(append(dst, tagProposeReply), m)
	case Read:
		dst = append(dst, tagRead)
		dst = u(dst, m.ID)
	case ReadReply:
		dst = appendReply(append(dst, tagReadReply), ProposeReply(m))
	case TransferLeader:
		dst = append(dst, tagTransferLeader)
		dst = appendID(dst, m.To)
	default:
		return dst, fmt.Errorf("raft: cannot encode %T", m)
	}
	return dst, nil
}

func appendAppendEntries(dst []byte, m *AppendEntries) ([]byte, error) {
	u := binary.AppendUvarint
	dst = append(dst, tagAppendEntries)
	dst = u(u(u(u(dst, m.Term), m.PrevIndex), m.PrevTerm), m.Commit)
	for i := range m.Entries {
		if m.Entries[i].Index != m.PrevIndex+1+uint64(i) {
			return dst, fmt.Errorf("raft: AppendEntries entry %d has index %d after prev %d", i, m.Entries[i].Index, m.PrevIndex)
		}
	}
	return appendEntryBody(dst, m.Entries), nil
}

func appendAppendEntriesReply(dst []byte, m *AppendEntriesReply) []byte {
	u := binary.AppendUvarint
	dst = append(dst, tagAppendEntriesReply)
	dst = u(dst, m.Term)
	dst = append(dst, flags(m.Success))
	return u(u(u(dst, m.Index), m.ConflictTerm), m.ConflictIndex)
}

func (r *reader) id() sim.NodeID {
	v := r.uvarint()
	if v > 1<<31 {
		r.err = errCorrupt
		return None
	}
	return sim.NodeID(int64(v) - 1)
}

// flags reads a flags byte of up to two bits (max of them defined), as a
// value so that decoding a message allocates nothing for it.
func (r *reader) flags(max int) [2]bool {
	f := r.byte1()
	if f>>max != 0 {
		r.err = errCorrupt
	}
	return [2]bool{f&1 != 0, f&2 != 0}
}

// reply reads the body ProposeReply and ReadReply share.
func (r *reader) reply() ProposeReply {
	v := ProposeReply{ID: r.uvarint()}
	v.OK = r.flags(1)[0]
	v.Index, v.Leader = r.uvarint(), r.id()
	return v
}

// Decode parses one message. It rejects malformed input with an error and
// never panics; no allocation exceeds the input's size.
func (Codec) Decode(b []byte) (sim.Message, error) {
	if len(b) == 0 || len(b) > MaxMessageSize {
		return nil, errMalformed
	}
	r := reader{b: bytes.Clone(b[1:])}
	var m sim.Message
	switch b[0] {
	case tagRequestVote:
		v := RequestVote{Term: r.uvarint(), LastIndex: r.uvarint(), LastTerm: r.uvarint()}
		f := r.flags(2)
		v.PreVote, v.Transfer = f[0], f[1]
		m = v
	case tagRequestVoteReply:
		v := RequestVoteReply{Term: r.uvarint()}
		f := r.flags(2)
		v.Granted, v.PreVote = f[0], f[1]
		m = v
	case tagAppendEntries:
		v := AppendEntries{Term: r.uvarint(), PrevIndex: r.uvarint(), PrevTerm: r.uvarint(), Commit: r.uvarint()}
		if v.PrevIndex > maxIndex {
			return nil, errMalformed
		}
		v.Entries = r.entries(v.PrevIndex + 1)
		m = v
	case tagAppendEntriesReply:
		v := AppendEntriesReply{Term: r.uvarint()}
		v.Success = r.flags(1)[0]
		v.Index, v.ConflictTerm, v.ConflictIndex = r.uvarint(), r.uvarint(), r.uvarint()
		m = v
	case tagHeartbeat:
		m = Heartbeat{Term: r.uvarint(), Commit: r.uvarint(), Seq: r.uvarint()}
	case tagHeartbeatReply:
		m = HeartbeatReply{Term: r.uvarint(), Seq: r.uvarint()}
	case tagInstallSnapshot:
		v := InstallSnapshot{Term: r.uvarint(), Index: r.uvarint(), LastTerm: r.uvarint(), Data: r.bytes()}
		if v.Index > maxIndex {
			return nil, errMalformed
		}
		m = v
	case tagTimeoutNow:
		m = TimeoutNow{Term: r.uvarint()}
	case tagPropose:
		m = Propose{ID: r.uvarint(), Data: r.bytes()}
	case tagProposeReply:
		m = r.reply()
	case tagRead:
		m = Read{ID: r.uvarint()}
	case tagReadReply:
		m = ReadReply(r.reply())
	case tagTransferLeader:
		m = TransferLeader{To: r.id()}
	default:
		return nil, errMalformed
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errMalformed
	}
	return m, nil
}
