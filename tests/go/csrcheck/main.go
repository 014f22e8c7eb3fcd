// csrcheck judges a CSR the way Vault and istiod read it: with Go's crypto/x509 and
// encoding/asn1, which reject DER violations such as a BOOLEAN encoded 0x01. Standard
// library only; build with GO111MODULE=off.
//
// Usage: csrcheck <csr.pem>. Exit 0 and "ok" when every check passes, exit 1 and the
// first problem otherwise.
package main

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
)

// basicConstraints as Go's x509 package declares it.
type basicConstraints struct {
	IsCA       bool `asn1:"optional"`
	MaxPathLen int  `asn1:"optional,default:-1"`
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
)

func check(path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	block, rest := pem.Decode(text)
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
		return fmt.Errorf("not exactly one CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("ParseCertificateRequest: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	for _, ext := range csr.Extensions {
		var rest []byte
		var err error
		switch {
		case ext.Id.Equal(oidBasicConstraints):
			var bc basicConstraints
			rest, err = asn1.Unmarshal(ext.Value, &bc)
			if err == nil && !bc.IsCA {
				err = fmt.Errorf("cA is not TRUE")
			}
		case ext.Id.Equal(oidKeyUsage):
			var ku asn1.BitString
			rest, err = asn1.Unmarshal(ext.Value, &ku)
		case ext.Id.Equal(oidSubjectAltName):
			var names asn1.RawValue
			rest, err = asn1.Unmarshal(ext.Value, &names)
		default:
			return fmt.Errorf("unexpected extension %v", ext.Id)
		}
		if err != nil {
			return fmt.Errorf("extension %v: %v", ext.Id, err)
		}
		if len(rest) != 0 {
			return fmt.Errorf("extension %v: trailing bytes", ext.Id)
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: csrcheck <csr.pem>")
		os.Exit(2)
	}
	if err := check(os.Args[1]); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ok")
}
