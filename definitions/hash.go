package definitions

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Spec returns an object's canonical JSON: struct fields in declaration order, map keys
// sorted, no positions, no insignificant whitespace. Two objects with the same content have
// byte-identical specs wherever they were declared.
func Spec(o Object) ([]byte, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", o.ObjectKind().Label(), o.ObjectName(), err)
	}
	return b, nil
}

// Hash returns "sha256:<hex>" of an object's canonical spec.
func Hash(o Object) (string, error) {
	spec, err := Spec(o)
	if err != nil {
		return "", err
	}
	return HashSpec(spec), nil
}

// HashSpec hashes a canonical spec as Hash does.
func HashSpec(spec []byte) string {
	sum := sha256.Sum256(spec)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DecodeSpec rebuilds an object from its canonical spec, as stored in the registry. Unknown
// fields are rejected so that a spec written by a newer Quiver is not silently misread.
func DecodeSpec(k Kind, spec []byte) (Object, error) {
	var o Object
	switch k {
	case KindEntity:
		o = &Entity{}
	case KindSource:
		o = &Source{}
	case KindFeatureView:
		o = &FeatureView{}
	case KindFeatureService:
		o = &FeatureService{}
	case KindModel:
		o = &Model{}
	case KindTrainingJob:
		o = &TrainingJob{}
	case KindRequestSource:
		o = &RequestSource{}
	case KindOnDemandView:
		o = &OnDemandFeatureView{}
	default:
		return nil, fmt.Errorf("decode spec: unknown kind %q", k)
	}
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(o); err != nil {
		return nil, fmt.Errorf("decode %s spec: %w", k.Label(), err)
	}
	if j, ok := o.(*TrainingJob); ok {
		// json.Number defaults back to the declared param types.
		for name, p := range j.Params {
			if n, ok := p.Default.(json.Number); ok {
				v, err := ParseParam(p.Type, n.String())
				if err != nil {
					return nil, fmt.Errorf("decode training job spec: param %q: %w", name, err)
				}
				p.Default = v
				j.Params[name] = p
			}
		}
	}
	return o, nil
}
