package feast

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
)

// feastTemplateODFV is the on-demand view of `feast init`'s template, as the registry holds
// its body_text.
const feastTemplateODFV = `@on_demand_feature_view(
    sources=[driver_stats_fv, input_request],
    schema=[
        Field(name="conv_rate_plus_val1", dtype=Float64),
        Field(name="conv_rate_plus_val2", dtype=Float64),
    ],
)
def transformed_conv_rate(inputs: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame()
    df["conv_rate_plus_val1"] = inputs["conv_rate"] + inputs["val_to_add"]
    df["conv_rate_plus_val2"] = inputs["conv_rate"] + inputs["val_to_add_2"]
    return df
`

func TestTranslatePandas(t *testing.T) {
	ty := definitions.MustType
	cols := map[string]pyColumn{
		"conv_rate":                      {Input: "driver_hourly_stats", Field: "conv_rate", Type: ty("float32")},
		"driver_hourly_stats__conv_rate": {Input: "driver_hourly_stats", Field: "conv_rate", Type: ty("float32")},
		"val_to_add":                     {Input: "vals_to_add", Field: "val_to_add", Type: ty("int64")},
		"val_to_add_2":                   {Input: "vals_to_add", Field: "val_to_add_2", Type: ty("int64")},
		"trips":                          {Input: "stats", Field: "trips", Type: ty("int32")},
		"name":                           {Input: "stats", Field: "name", Type: ty("string")},
	}
	fn := func(body string) string {
		return "def f(inputs: pd.DataFrame) -> pd.DataFrame:\n    df = pd.DataFrame()\n" + body + "    return df\n"
	}
	cases := []struct {
		name    string
		src     string
		outputs map[string]string
		want    map[string]string
		err     string // a substring of the error; "" for success
	}{
		{"feast init template", feastTemplateODFV, map[string]string{"conv_rate_plus_val1": "float64", "conv_rate_plus_val2": "float64"},
			map[string]string{
				"conv_rate_plus_val1": "driver_hourly_stats.conv_rate + double(vals_to_add.val_to_add)",
				"conv_rate_plus_val2": "driver_hourly_stats.conv_rate + double(vals_to_add.val_to_add_2)",
			}, ""},
		{"ints stay ints", fn(`    df["s"] = inputs["val_to_add"] * 2 - inputs["trips"]` + "\n"), map[string]string{"s": "int64"},
			map[string]string{"s": "vals_to_add.val_to_add * 2 - stats.trips"}, ""},
		{"true division is float", fn(`    df["r"] = inputs["val_to_add"] / (inputs["trips"] + 1)` + "\n"), map[string]string{"r": "float64"},
			map[string]string{"r": "double(vals_to_add.val_to_add) / double(stats.trips + 1)"}, ""},
		{"int result in a float output", fn(`    df["s"] = inputs["val_to_add"] + 1` + "\n"), map[string]string{"s": "float32"},
			map[string]string{"s": "double(vals_to_add.val_to_add + 1)"}, ""},
		{"literals take the float side", fn(`    df["s"] = 2 * inputs["conv_rate"] - .5 + -3` + "\n"), map[string]string{"s": "float64"},
			map[string]string{"s": "2.0 * driver_hourly_stats.conv_rate - 0.5 + -3.0"}, ""},
		{"grouping kept", fn(`    df["s"] = inputs["conv_rate"] * (inputs["val_to_add"] - (inputs["val_to_add_2"] - 1))` + "\n"), map[string]string{"s": "float64"},
			map[string]string{"s": "driver_hourly_stats.conv_rate * double(vals_to_add.val_to_add - (vals_to_add.val_to_add_2 - 1))"}, ""},
		{"full feature name, single quotes, comment, continuation", fn("    # the sum\n    df['s'] = (inputs['driver_hourly_stats__conv_rate'] +\n        inputs['val_to_add'])  # done\n"), map[string]string{"s": "float64"},
			map[string]string{"s": "driver_hourly_stats.conv_rate + double(vals_to_add.val_to_add)"}, ""},
		{"method call", fn(`    df["s"] = inputs["conv_rate"].fillna(0)` + "\n"), map[string]string{"s": "float64"}, nil, "method"},
		{"floor division", fn(`    df["s"] = inputs["val_to_add"] // 2` + "\n"), map[string]string{"s": "int64"}, nil, "operator //"},
		{"power", fn(`    df["s"] = inputs["conv_rate"] ** 2` + "\n"), map[string]string{"s": "float64"}, nil, "operator **"},
		{"unknown column", fn(`    df["s"] = inputs["nope"] + 1` + "\n"), map[string]string{"s": "float64"}, nil, `column "nope"`},
		{"string column", fn(`    df["s"] = inputs["name"] + "x"` + "\n"), map[string]string{"s": "string"}, nil, "not a number"},
		{"float into an int output", fn(`    df["s"] = inputs["conv_rate"] + 1` + "\n"), map[string]string{"s": "int64"}, nil, "a float expression"},
		{"missing output", fn(`    df["s"] = inputs["conv_rate"] + 1` + "\n"), map[string]string{"s": "float64", "t": "float64"}, nil, `does not assign column "t"`},
		{"intermediate variable", fn("    x = inputs[\"conv_rate\"] + 1\n    df[\"s\"] = x\n"), map[string]string{"s": "float64"}, nil, "statement"},
		{"numpy call", fn(`    df["s"] = np.log(inputs["conv_rate"])` + "\n"), map[string]string{"s": "float64"}, nil, "it uses np"},
		{"no def", "lambda inputs: inputs", map[string]string{"s": "float64"}, nil, "no def"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outputs := map[string]definitions.Type{}
			for k, v := range tc.outputs {
				outputs[k] = ty(v)
			}
			got, err := translatePandas(tc.src, cols, outputs)
			if tc.err != "" {
				require.Error(t, err)
				require.True(t, errors.Is(err, errUntranslatable), err)
				require.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
