package serving

import (
	"regexp"
	"strconv"
	"strings"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/model"
)

// ParseUntyped turns "name=value" strings into columns without definitions, for clients of a
// remote server that have no feature repo: what names the flag in errors ("entity",
// "request"). A value's type is read from how it is written:
//
//	42, -7           int64 (no leading zeros; the server narrows it to an int32 key or feature)
//	0.5, 1e3, -2.0   float64 (the server narrows it to a float32 feature)
//	true, false      bool
//	"42", "007"      string: double quotes make anything a string (quotes removed)
//	anything else    string
//
// A name given several times makes several rows, in order.
func ParseUntyped(what string, args []string) (map[string]*pb.RepeatedValue, error) {
	out := map[string]*pb.RepeatedValue{}
	for _, a := range args {
		name, raw, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, invalidf("%s %q is not of the form name=value", what, a)
		}
		if out[name] == nil {
			out[name] = &pb.RepeatedValue{}
		}
		out[name].Val = append(out[name].Val, untypedValue(raw))
	}
	return out, nil
}

var (
	intLiteral   = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
	floatLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
)

func untypedValue(s string) *pb.Value {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return &pb.Value{Kind: &pb.Value_StringVal{StringVal: s[1 : len(s)-1]}}
	}
	if intLiteral.MatchString(s) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: n}}
		}
	}
	if s != "" && s != "-" && floatLiteral.MatchString(s) && strings.ContainsAny(s, "0123456789") {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return &pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: f}}
		}
	}
	switch s {
	case "true":
		return &pb.Value{Kind: &pb.Value_BoolVal{BoolVal: true}}
	case "false":
		return &pb.Value{Kind: &pb.Value_BoolVal{BoolVal: false}}
	}
	return &pb.Value{Kind: &pb.Value_StringVal{StringVal: s}}
}

// FeaturesRequest is the GetOnlineFeatures request of a feature service (or of the features
// named, "view:feature" or "view:*"), with request fields given as name=value (ParseUntyped);
// the caller adds the entities.
func FeaturesRequest(service string, features []string, fullNames bool, request []string) (*pb.GetOnlineFeaturesRequest, error) {
	req := &pb.GetOnlineFeaturesRequest{FullFeatureNames: fullNames}
	var err error
	if req.RequestContext, err = ParseUntyped("request", request); err != nil {
		return nil, err
	}
	if service != "" {
		req.Kind = &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: service}
	} else {
		req.Kind = &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: features}}
	}
	return req, nil
}

// PredictRequestOf is the Predict request of model reference NAME, NAME@ALIAS or NAME@vN,
// with entities and request fields given as name=value (ParseUntyped).
func PredictRequestOf(modelRef string, entities, request []string, includeFeatures bool) (*pb.PredictRequest, error) {
	req := &pb.PredictRequest{Model: &pb.ModelRef{}, IncludeFeatures: includeFeatures}
	var err error
	if req.Entities, err = ParseUntyped("entity", entities); err != nil {
		return nil, err
	}
	if req.RequestContext, err = ParseUntyped("request", request); err != nil {
		return nil, err
	}
	ref := model.ParseRef(modelRef)
	req.Model.Name = ref.Name
	switch {
	case ref.Alias != "":
		req.Model.Selector = &pb.ModelRef_Alias{Alias: ref.Alias}
	case ref.Version != "":
		req.Model.Selector = &pb.ModelRef_Version{Version: ref.Version}
	}
	return req, nil
}
