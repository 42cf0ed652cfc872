//go:build !unix

package kvclient

import "errors"

const rawExchange = false

func (c *serialConn) exchangeRaw([]byte) ([]byte, error) {
	return nil, errors.New("kvclient: no raw socket access on this system")
}
