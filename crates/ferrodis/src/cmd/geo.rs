//! Geospatial commands on sorted sets: GEOADD GEODIST GEOHASH GEOPOS GEOSEARCH GEOSEARCHSTORE GEORADIUS
//! GEORADIUS_RO GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO.
//!
//! A point is a sorted-set member whose score is a 52-bit interleaved geohash (26 bits of latitude in the
//! even bits, 26 of longitude in the odd ones, over latitudes ±85.05112878 and longitudes ±180), as Redis
//! stores it, so geo keys are plain sorted sets to every other command, RDB, AOF and DUMP.
//!
//! A search covers the shape with the geohash cell of the center, at a precision estimated from the radius,
//! and its 8 neighbours; each cell is a score range of the sorted set, and each member in it is kept when its
//! (decoded) position lies inside the shape. Distances are haversine on a sphere of radius 6372797.560856 m.
//! Every step (cell size estimation, the neighbour cells dropped as useless, the skip of repeated cells, the
//! order of the cells and of the members, the COUNT ANY cut-off) follows Redis's, so results and their order
//! are Redis's.

use super::argv::Argv;
use super::spec::{self, ACCESS, OW, RO, RW, UPDATE};
use super::zsets::{as_zset, as_zset_mut};
use super::{err, flags::*, parse, CmdError, CmdResult, Command, Ctx};
use crate::cmd::acl;
use crate::keyspace::entry::Entry;
use crate::keyspace::Shard;
use crate::types::zset::{AddFlags, AddOutcome, ScoreRange, ZLimits, ZSet};
use crate::types::Value;
use ferrodis_protocol::{Args, Reply};

pub static COMMANDS: &[Command] = &[
    Command {
        name: "geoadd",
        arity: -5,
        flags: WRITE | DENYOOM,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RW | UPDATE)],
        handler: geoadd,
        group: "geo",
        since: "3.2.0",
        summary: "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
        complexity: "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        syntax: "key condition:[NX | XX]@6.2.0 [CH=change@6.2.0] data:<longitude:double latitude:double member> ...",
        history: &[("6.2.0", "Added the `CH`, `NX` and `XX` options.")],
        ..Command::DEFAULT
    },
    Command {
        name: "geodist",
        arity: -4,
        flags: READONLY,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: geodist,
        group: "geo",
        since: "3.2.0",
        summary: "Returns the distance between two members of a geospatial index.",
        complexity: "O(1)",
        syntax: "key member1 member2 unit:[M | KM | FT | MI]",
        ..Command::DEFAULT
    },
    Command {
        name: "geohash",
        arity: -2,
        flags: READONLY,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: geohash,
        group: "geo",
        since: "3.2.0",
        summary: "Returns members from a geospatial index as geohash strings.",
        complexity: "O(1) for each member requested.",
        syntax: "key [member ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "geopos",
        arity: -2,
        flags: READONLY,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: geopos,
        group: "geo",
        since: "3.2.0",
        summary: "Returns the longitude and latitude of members from a geospatial index.",
        complexity: "O(1) for each member requested.",
        syntax: "key [member ...]",
        ..Command::DEFAULT
    },
    Command {
        name: "georadius",
        arity: -6,
        flags: WRITE | DENYOOM,
        acl: acl::GEO,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RO | ACCESS),
            spec::keyword("STORE", 6).range(0, 1, 0).flags(OW | UPDATE),
            spec::keyword("STOREDIST", 6).range(0, 1, 0).flags(OW | UPDATE),
        ],
        handler: georadius,
        group: "geo",
        since: "3.2.0",
        summary: "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.",
        complexity: "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.",
        syntax: "key longitude:double latitude:double radius:double unit:<M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] count-block:[COUNT count:integer [ANY@6.2.0]] order:[ASC | DESC] store:[STORE storekey:key/key | STOREDIST storedistkey:key/key]",
        history: &[
            ("6.2.0", "Added the `ANY` option for `COUNT`."),
            ("7.0.0", "Added support for uppercase unit names."),
        ],
        deprecated_since: "6.2.0",
        replaced_by: "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "georadius_ro",
        arity: -6,
        flags: READONLY,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: georadius_ro,
        group: "geo",
        since: "3.2.10",
        summary: "Returns members from a geospatial index that are within a distance from a coordinate.",
        complexity: "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.",
        syntax: "key longitude:double latitude:double radius:double unit:<M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] count-block:[COUNT count:integer [ANY@6.2.0]] order:[ASC | DESC]",
        history: &[("6.2.0", "Added the `ANY` option for `COUNT`.")],
        deprecated_since: "6.2.0",
        replaced_by: "`GEOSEARCH` with the `BYRADIUS` argument",
        ..Command::DEFAULT
    },
    Command {
        name: "georadiusbymember",
        arity: -5,
        flags: WRITE | DENYOOM,
        acl: acl::GEO,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(RO | ACCESS),
            spec::keyword("STORE", 5).range(0, 1, 0).flags(OW | UPDATE),
            spec::keyword("STOREDIST", 5).range(0, 1, 0).flags(OW | UPDATE),
        ],
        handler: georadiusbymember,
        group: "geo",
        since: "3.2.0",
        summary: "Queries a geospatial index for members within a distance from a member, optionally stores the result.",
        complexity: "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.",
        syntax: "key member radius:double unit:<M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] count-block:[COUNT count:integer [ANY]] order:[ASC | DESC] store:[STORE storekey:key/key | STOREDIST storedistkey:key/key]",
        history: &[("7.0.0", "Added support for uppercase unit names.")],
        deprecated_since: "6.2.0",
        replaced_by: "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` and `FROMMEMBER` arguments",
        ..Command::DEFAULT
    },
    Command {
        name: "georadiusbymember_ro",
        arity: -5,
        flags: READONLY,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: georadiusbymember_ro,
        group: "geo",
        since: "3.2.10",
        summary: "Returns members from a geospatial index that are within a distance from a member.",
        complexity: "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.",
        syntax: "key member radius:double unit:<M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH] count-block:[COUNT count:integer [ANY]] order:[ASC | DESC]",
        deprecated_since: "6.2.0",
        replaced_by: "`GEOSEARCH` with the `BYRADIUS` and `FROMMEMBER` arguments",
        ..Command::DEFAULT
    },
    Command {
        name: "geosearch",
        arity: -7,
        flags: READONLY,
        acl: acl::GEO,
        keys: &[spec::index(1).range(0, 1, 0).flags(RO | ACCESS)],
        handler: geosearch,
        group: "geo",
        since: "6.2.0",
        summary: "Queries a geospatial index for members inside an area of a box or a circle.",
        complexity: "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape",
        syntax: "key from:<FROMMEMBER member | FROMLONLAT <longitude:double latitude:double>> by:<circle:<BYRADIUS radius:double unit:<M | KM | FT | MI>> | box:<BYBOX width:double height:double unit:<M | KM | FT | MI>>> order:[ASC | DESC] count-block:[COUNT count:integer [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]",
        history: &[("7.0.0", "Added support for uppercase unit names.")],
        ..Command::DEFAULT
    },
    Command {
        name: "geosearchstore",
        arity: -8,
        flags: WRITE | DENYOOM,
        acl: acl::GEO,
        keys: &[
            spec::index(1).range(0, 1, 0).flags(OW | UPDATE),
            spec::index(2).range(0, 1, 0).flags(RO | ACCESS),
        ],
        handler: geosearchstore,
        group: "geo",
        since: "6.2.0",
        summary: "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.",
        complexity: "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape",
        syntax: "destination:key source:key from:<FROMMEMBER member | FROMLONLAT <longitude:double latitude:double>> by:<circle:<BYRADIUS radius:double unit:<M | KM | FT | MI>> | box:<BYBOX width:double height:double unit:<M | KM | FT | MI>>> order:[ASC | DESC] count-block:[COUNT count:integer [ANY]] [STOREDIST]",
        history: &[("7.0.0", "Added support for uppercase unit names.")],
        ..Command::DEFAULT
    },
];

// ---------------------------------------------------------------------------------------------------------
// Geohash arithmetic

const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const LONG_MIN: f64 = -180.0;
const LONG_MAX: f64 = 180.0;
const STEP_MAX: u8 = 26;
const EARTH_RADIUS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

#[inline]
fn deg_rad(d: f64) -> f64 {
    d * D_R
}

#[inline]
fn rad_deg(r: f64) -> f64 {
    r / D_R
}

/// A geohash cell: `step` bits of each coordinate, interleaved. `step == 0 && bits == 0` is "no cell".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Hash {
    bits: u64,
    step: u8,
}

impl Hash {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Range {
    min: f64,
    max: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Area {
    lat: Range,
    long: Range,
}

/// Spreads the 32 bits of `v` over the even bits of a u64.
#[inline]
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `x` into a u32.
#[inline]
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Latitude bits in the even positions, longitude bits in the odd ones.
#[inline]
fn interleave(lat: u32, long: u32) -> u64 {
    spread(lat) | (spread(long) << 1)
}

/// (latitude bits, longitude bits).
#[inline]
fn deinterleave(bits: u64) -> (u32, u32) {
    (squash(bits), squash(bits >> 1))
}

/// C's conversion of a double to `uint32_t` for values the callers produce (non-negative, below 2^32).
#[inline]
fn to_u32(v: f64) -> u32 {
    v as u32
}

/// The cell of `step` bits holding the point, over the given ranges; None outside them.
fn encode(long_r: Range, lat_r: Range, long: f64, lat: f64, step: u8) -> Option<Hash> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&long) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || long < long_r.min || long > long_r.max {
        return None;
    }
    let mut lat_off = (lat - lat_r.min) / (lat_r.max - lat_r.min);
    let mut long_off = (long - long_r.min) / (long_r.max - long_r.min);
    lat_off *= (1u64 << step) as f64;
    long_off *= (1u64 << step) as f64;
    Some(Hash {
        bits: interleave(to_u32(lat_off), to_u32(long_off)),
        step,
    })
}

const COORD_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const COORD_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The area a cell covers.
fn decode(long_r: Range, lat_r: Range, h: Hash) -> Option<Area> {
    if h.is_zero() {
        return None;
    }
    let (ilat, ilong) = deinterleave(h.bits);
    let div = (1u64 << h.step) as f64;
    let lat_scale = lat_r.max - lat_r.min;
    let long_scale = long_r.max - long_r.min;
    Some(Area {
        lat: Range {
            min: lat_r.min + (f64::from(ilat) / div) * lat_scale,
            max: lat_r.min + (f64::from(ilat.wrapping_add(1)) / div) * lat_scale,
        },
        long: Range {
            min: long_r.min + (f64::from(ilong) / div) * long_scale,
            max: long_r.min + (f64::from(ilong.wrapping_add(1)) / div) * long_scale,
        },
    })
}

/// The center of a cell, clamped to the valid coordinates: [longitude, latitude].
fn area_center(a: &Area) -> [f64; 2] {
    let long = ((a.long.min + a.long.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat.min + a.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [long, lat]
}

/// C's (x86-64) conversion of a double to `uint64_t`.
fn double_to_u64(x: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    fn cvtt(x: f64) -> i64 {
        if x.is_nan() || !(-TWO63..TWO63).contains(&x) {
            i64::MIN
        } else {
            x as i64
        }
    }
    if x >= TWO63 {
        (cvtt(x - TWO63) as u64) ^ (1 << 63)
    } else {
        cvtt(x) as u64
    }
}

/// C's (x86-64) conversion of a double to `long long`.
fn double_to_i64(x: f64) -> i64 {
    if x.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

/// The position a score stands for: [longitude, latitude].
fn decode_score(score: f64) -> [f64; 2] {
    let h = Hash {
        bits: double_to_u64(score),
        step: STEP_MAX,
    };
    match decode(COORD_LONG, COORD_LAT, h) {
        Some(a) => area_center(&a),
        None => [0.0, 0.0],
    }
}

/// The score of a position (already validated).
fn encode_score(long: f64, lat: f64) -> u64 {
    encode(COORD_LONG, COORD_LAT, long, lat, STEP_MAX).map_or(0, |h| h.bits)
}

/// The 52-bit score range of a cell: [min, max).
fn cell_scores(h: Hash) -> (u64, u64) {
    let shift = 52 - u32::from(h.step) * 2;
    (h.bits << shift, h.bits.wrapping_add(1) << shift)
}

fn move_x(h: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let sh = 64 - u32::from(h.step) * 2;
    let mut x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> sh;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> sh;
    h.bits = x | y;
}

fn move_y(h: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let sh = 64 - u32::from(h.step) * 2;
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> sh;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> sh;
    h.bits = x | y;
}

fn moved(h: Hash, dx: i8, dy: i8) -> Hash {
    let mut n = h;
    move_x(&mut n, dx);
    move_y(&mut n, dy);
    n
}

/// Distance in meters between two latitudes on one meridian.
#[inline]
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Circle { radius: f64 },
    Box { width: f64, height: f64 },
}

#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Center: [longitude, latitude].
    xy: [f64; 2],
    /// Meters per unit.
    conversion: f64,
    kind: Kind,
}

impl Shape {
    /// Whether the point of `score` is inside: its position and distance (meters) when it is.
    fn within(&self, score: f64) -> Option<([f64; 2], f64)> {
        let xy = decode_score(score);
        match self.kind {
            Kind::Circle { radius } => {
                let d = distance(self.xy[0], self.xy[1], xy[0], xy[1]);
                (d <= radius * self.conversion).then_some((xy, d))
            }
            Kind::Box { width, height } => {
                let (w, h) = (width * self.conversion, height * self.conversion);
                if lat_distance(xy[1], self.xy[1]) > h / 2.0 {
                    return None;
                }
                if distance(xy[0], xy[1], self.xy[0], xy[1]) > w / 2.0 {
                    return None;
                }
                Some((xy, distance(self.xy[0], self.xy[1], xy[0], xy[1])))
            }
        }
    }

    /// [min long, min lat, max long, max lat] around the shape.
    fn bounding_box(&self) -> [f64; 4] {
        let [long, lat] = self.xy;
        let (height, width) = match self.kind {
            Kind::Circle { radius } => (self.conversion * radius, self.conversion * radius),
            Kind::Box { width, height } => (
                self.conversion * (height / 2.0),
                self.conversion * (width / 2.0),
            ),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS);
        let long_delta_top = rad_deg(width / EARTH_RADIUS / deg_rad(lat + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS / deg_rad(lat - lat_delta).cos());
        let south = lat < 0.0;
        let d = if south {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [long - d, lat - lat_delta, long + d, lat + lat_delta]
    }

    /// The cells to scan, in Redis's order: center, N, S, E, W, NE, NW, SE, SW (zero cells skipped later).
    fn cells(&self) -> [Hash; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let [long, lat] = self.xy;
        let radius_m = match self.kind {
            Kind::Circle { radius } => radius,
            Kind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.conversion;
        let mut steps = estimate_steps(radius_m, lat);
        let at = |steps: u8| {
            let h = encode(COORD_LONG, COORD_LAT, long, lat, steps).unwrap_or(Hash {
                bits: 0,
                step: steps,
            });
            // north, south, east, west, north_east, north_west, south_east, south_west
            let n = [
                moved(h, 0, 1),
                moved(h, 0, -1),
                moved(h, 1, 0),
                moved(h, -1, 0),
                moved(h, 1, 1),
                moved(h, -1, 1),
                moved(h, 1, -1),
                moved(h, -1, -1),
            ];
            (h, n, decode(COORD_LONG, COORD_LAT, h).unwrap_or_default())
        };
        let (mut hash, mut nb, mut area) = at(steps);
        let area_of = |h: Hash| decode(COORD_LONG, COORD_LAT, h).unwrap_or_default();
        let (north, south, east, west) = (
            area_of(nb[0]),
            area_of(nb[1]),
            area_of(nb[2]),
            area_of(nb[3]),
        );
        let decrease = north.lat.max < max_lat
            || south.lat.min > min_lat
            || east.long.max < max_lon
            || west.long.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            (hash, nb, area) = at(steps);
        }
        let zero = Hash::default();
        if steps >= 2 {
            if area.lat.min < min_lat {
                nb[1] = zero; // south
                nb[7] = zero; // south west
                nb[6] = zero; // south east
            }
            if area.lat.max > max_lat {
                nb[0] = zero; // north
                nb[4] = zero; // north east
                nb[5] = zero; // north west
            }
            if area.long.min < min_lon {
                nb[3] = zero; // west
                nb[7] = zero; // south west
                nb[5] = zero; // north west
            }
            if area.long.max > max_lon {
                nb[2] = zero; // east
                nb[6] = zero; // south east
                nb[4] = zero; // north east
            }
        }
        [hash, nb[0], nb[1], nb[2], nb[3], nb[4], nb[5], nb[6], nb[7]]
    }
}

/// The geohash precision (bits per coordinate) for a search of `range` meters around latitude `lat`.
fn estimate_steps(mut range: f64, lat: f64) -> u8 {
    if range == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// A point found by a search.
struct Found {
    member: Vec<u8>,
    xy: [f64; 2],
    dist: f64,
    score: f64,
}

/// The members of `z` inside `shape`, in Redis's order (cell by cell, ascending score in each); with
/// `limit` > 0, stops once that many were found.
fn search(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Found> {
    let cells = shape.cells();
    let mut out = Vec::new();
    let mut last: usize = 0;
    for (i, &cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if last != 0 && cell == cells[last] {
            continue;
        }
        if !out.is_empty() && limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = cell_scores(cell);
        let range = ScoreRange {
            min: min as f64,
            max: max as f64,
            minex: false,
            maxex: true,
        };
        let (lo, hi) = z.score_ranks(&range);
        if lo < hi {
            let mut full = false;
            z.for_range(lo, hi, false, |m, s| {
                if full {
                    return;
                }
                if let Some((xy, dist)) = shape.within(s) {
                    out.push(Found {
                        member: m.to_vec(),
                        xy,
                        dist,
                        score: s,
                    });
                }
                if limit > 0 && out.len() >= limit {
                    full = true;
                }
            });
        }
        last = i;
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Argument helpers

/// strcasecmp against a NUL-terminated C string: the argument compares up to its first NUL.
fn is(arg: &[u8], word: &str) -> bool {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    arg[..end].eq_ignore_ascii_case(word.as_bytes())
}

/// Meters per unit, or Redis's error.
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    if is(arg, "m") {
        Ok(1.0)
    } else if is(arg, "km") {
        Ok(1000.0)
    } else if is(arg, "ft") {
        Ok(0.3048)
    } else if is(arg, "mi") {
        Ok(1609.34)
    } else {
        Err("ERR unsupported unit provided. please use M, KM, FT, MI".into())
    }
}

/// A double as Redis's getDoubleFromObject reads it (strtod over the whole argument): the decimal forms
/// `parse::float` accepts, plus C's hexadecimal floats (`0x1.8p3`).
fn float(arg: &[u8]) -> Option<f64> {
    parse::float(arg).ok().or_else(|| hex_float(arg))
}

/// strtod's hexadecimal form: `[+-]0x` hex digits with an optional `.`, then an optional `p[+-]exponent`.
fn hex_float(arg: &[u8]) -> Option<f64> {
    let (neg, rest) = match arg.first()? {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    let rest = rest
        .strip_prefix(b"0x")
        .or_else(|| rest.strip_prefix(b"0X"))?;
    let (x, _) = ferrodis_protocol::num::parse_hex_float(rest)?;
    if x.is_infinite() {
        return None; // ERANGE
    }
    Some(if neg { -x } else { x })
}

fn float_or(arg: &[u8], msg: &'static str) -> Result<f64, CmdError> {
    float(arg).ok_or_else(|| CmdError::from(msg))
}

/// A longitude,latitude pair, validated.
fn lon_lat(a: &mut Argv<'_>) -> Result<[f64; 2], CmdError> {
    let long = float_or(a.next()?, err::NOT_FLOAT)?;
    let lat = float_or(a.next()?, err::NOT_FLOAT)?;
    if !(LONG_MIN..=LONG_MAX).contains(&long) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(format!("ERR invalid longitude,latitude pair {long:.6},{lat:.6}").into());
    }
    Ok([long, lat])
}

/// `radius unit`: (radius, meters per unit).
fn radius_unit(a: &mut Argv<'_>) -> Result<(f64, f64), CmdError> {
    let r = float_or(a.next()?, "ERR need numeric radius")?;
    if r < 0.0 {
        return Err("ERR radius cannot be negative".into());
    }
    Ok((r, unit(a.next()?)?))
}

/// The position of `member` in `z`.
fn member_pos(z: &ZSet, member: &[u8]) -> Option<[f64; 2]> {
    z.score(member).map(decode_score)
}

fn limits(ctx: &Ctx<'_>) -> ZLimits {
    let l = ctx.srv.encoding.get();
    ZLimits {
        max_entries: l.zset_max_listpack_entries,
        max_value: l.zset_max_listpack_value,
    }
}

fn read_zset<'s>(
    ctx: &Ctx<'_>,
    shard: &'s mut Shard,
    key: &[u8],
) -> Result<Option<&'s ZSet>, CmdError> {
    match ctx.lookup(shard, key) {
        None => Ok(None),
        Some(e) => as_zset(e).map(Some),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reply formatting

/// A distance with 4 decimals, rounded as Redis's fixed-point formatter does (llrint of the value × 10⁴).
fn fmt_dist(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    let sv = double_to_i64((d * 10000.0).round_ties_even());
    let (neg, v) = if sv < 0 {
        (true, sv.unsigned_abs())
    } else {
        (false, sv as u64)
    };
    format!(
        "{}{}.{:04}",
        if neg { "-" } else { "" },
        v / 10000,
        v % 10000
    )
}

/// A coordinate as Redis prints it (`%.17Lf` of the value, trailing zeros removed).
fn fmt_coord(v: f64) -> String {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

fn reply_coord(r: &mut Reply<'_>, v: f64) {
    let s = fmt_coord(v);
    if r.resp3 {
        r.raw(b",");
        r.raw(s.as_bytes());
        r.raw(b"\r\n");
    } else {
        r.bulk(s.as_bytes());
    }
}

fn reply_pos(r: &mut Reply<'_>, xy: [f64; 2]) {
    r.array(2);
    reply_coord(r, xy[0]);
    reply_coord(r, xy[1]);
}

// ---------------------------------------------------------------------------------------------------------
// GEOADD

fn geoadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let (mut nx, mut xx) = (false, false);
    let mut head = vec![b"zadd".to_vec(), key.to_vec()];
    let mut ch = false;
    while let Some(w) = a.peek() {
        if is(w, "nx") {
            nx = true;
        } else if is(w, "xx") {
            xx = true;
        } else if is(w, "ch") {
            ch = true;
        } else {
            break;
        }
        head.push(w.to_vec());
        a.opt();
    }
    if !a.remaining().is_multiple_of(3) || (xx && nx) {
        return Err(err::SYNTAX.into());
    }
    let n = a.remaining() / 3;
    let mut points: Vec<(u64, &[u8])> = Vec::with_capacity(n);
    for _ in 0..n {
        let [long, lat] = lon_lat(&mut a)?;
        let member = a.next()?;
        points.push((encode_score(long, lat), member));
    }
    if n == 0 {
        // What ZADD answers for no elements.
        return Err(err::SYNTAX.into());
    }
    let f = AddFlags {
        nx,
        xx,
        ..AddFlags::default()
    };
    let lim = limits(ctx);
    let db = ctx.db();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let created = match ctx.lookup_write(&mut shard, key) {
        Some(e) => {
            as_zset_mut(e)?.maybe_convert(n, &lim);
            false
        }
        None => {
            if xx {
                drop(shard);
                ctx.reply().int(0);
                return Ok(());
            }
            let first = points.first().map_or(0, |p| p.1.len());
            let z = ZSet::with_hint(n, first, &lim);
            shard
                .db_mut(db)
                .insert_new(Entry::new(key, Value::ZSet(Box::new(z)), ctx.lru_clock()));
            true
        }
    };
    let (mut added, mut updated) = (0i64, 0i64);
    let mut empty = false;
    if let Some(e) = shard.db_mut(db).find_mut(key) {
        let z = as_zset_mut(e)?;
        for &(score, m) in &points {
            match z.add(m, score as f64, f, &lim) {
                Ok((AddOutcome::Added, _)) => added += 1,
                Ok((AddOutcome::Updated, _)) => updated += 1,
                _ => {}
            }
        }
        empty = z.is_empty();
    }
    if added > 0 || updated > 0 {
        ctx.modified(&mut shard, key, "zadd");
    }
    if created && empty {
        shard.db_mut(db).remove(key);
    }
    drop(shard);
    // Propagated as the ZADD it is.
    let mut argv = head;
    for (score, m) in &points {
        argv.push(score.to_string().into_bytes());
        argv.push(m.to_vec());
    }
    ctx.propagate_as(vec![argv]);
    ctx.reply().int(if ch { added + updated } else { added });
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// GEODIST / GEOHASH / GEOPOS

fn geodist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let (key, m1, m2) = (a.next()?, a.next()?, a.next()?);
    let to_meter = match a.remaining() {
        0 => 1.0,
        1 => unit(a.next()?)?,
        _ => return Err(err::SYNTAX.into()),
    };
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let d = match read_zset(ctx, &mut shard, key)? {
        None => None,
        Some(z) => match (z.score(m1), z.score(m2)) {
            (Some(s1), Some(s2)) => {
                let (p, q) = (decode_score(s1), decode_score(s2));
                Some(distance(p[0], p[1], q[0], q[1]) / to_meter)
            }
            _ => None,
        },
    };
    drop(shard);
    match d {
        Some(d) => ctx.reply().bulk(fmt_dist(d).as_bytes()),
        None => ctx.reply().null(),
    }
    Ok(())
}

const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The standard 11-character geohash of a score (latitudes over ±90; the 11th character is always '0').
fn geohash_string(score: f64) -> [u8; 11] {
    let [long, lat] = decode_score(score);
    let lat_r = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode(COORD_LONG, lat_r, long, lat, STEP_MAX).map_or(0, |h| h.bits);
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    out
}

fn geohash(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let members = a.rest();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let z = read_zset(ctx, &mut shard, key)?;
    let mut r = ctx.reply();
    r.array(members.len());
    for m in members.iter() {
        match z.and_then(|z| z.score(m)) {
            Some(s) => r.bulk(&geohash_string(s)),
            None => r.null(),
        }
    }
    drop(shard);
    Ok(())
}

fn geopos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut a = Argv::new(args);
    let key = a.next()?;
    let members = a.rest();
    let srv = ctx.srv;
    let mut shard = srv.keyspace.lock_key(key);
    let z = read_zset(ctx, &mut shard, key)?;
    let mut r = ctx.reply();
    r.array(members.len());
    for m in members.iter() {
        match z.and_then(|z| member_pos(z, m)) {
            Some(xy) => reply_pos(&mut r, xy),
            None => r.null_array(),
        }
    }
    drop(shard);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// GEORADIUS / GEORADIUSBYMEMBER / GEOSEARCH / GEOSEARCHSTORE

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS(_RO): center and radius given.
    Coords,
    /// GEORADIUSBYMEMBER(_RO).
    Member,
    /// GEOSEARCH / GEOSEARCHSTORE.
    Search,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

fn georadius(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    radius_generic(ctx, args, Variant::Coords, true, false)
}

fn georadius_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    radius_generic(ctx, args, Variant::Coords, false, false)
}

fn georadiusbymember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    radius_generic(ctx, args, Variant::Member, true, false)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    radius_generic(ctx, args, Variant::Member, false, false)
}

fn geosearch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    radius_generic(ctx, args, Variant::Search, false, false)
}

fn geosearchstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    radius_generic(ctx, args, Variant::Search, false, true)
}

/// The store key of a GEORADIUS line: the last STORE/STOREDIST option, as the handler reads it. Only for
/// locking; the handler parses the options again under the lock.
fn store_key_of<'a>(args: &Args<'a>, base: usize) -> Option<&'a [u8]> {
    let mut a = Argv::at(*args, base);
    let mut key = None;
    while let Some(w) = a.opt() {
        if (is(w, "store") || is(w, "storedist")) && a.remaining() >= 1 {
            key = a.opt();
        } else if is(w, "count") && a.remaining() >= 1 {
            a.opt();
        }
    }
    key
}

fn radius_generic(
    ctx: &mut Ctx<'_>,
    args: Args<'_>,
    variant: Variant,
    can_store: bool,
    search_store: bool,
) -> CmdResult {
    let name = Argv::at(args, 0).peek().unwrap_or(b"");
    let mut a = Argv::new(args);
    let (src, dst) = if search_store {
        let dst = a.next()?;
        (a.next()?, Some(dst))
    } else {
        let src = a.next()?;
        let base = if variant == Variant::Coords { 6 } else { 5 };
        let sk = if can_store {
            store_key_of(&args, base)
        } else {
            None
        };
        if let Some(sk) = sk {
            // The key specs (which plan the locks of transactions and scripts, and which ACL and cluster
            // checks read) name the first STORE and the first STOREDIST key; Redis writes the last one given.
            // They differ only when an option is repeated with another key: refused rather than writing
            // a key the specs do not declare.
            let declared = |word: &str| {
                (base..args.len())
                    .find(|&i| {
                        args.try_get(i)
                            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
                    })
                    .and_then(|i| args.try_get(i + 1))
            };
            let shard = crate::keyspace::shard_of(sk);
            let ok = [declared("STORE"), declared("STOREDIST")]
                .into_iter()
                .flatten()
                .any(|k| crate::keyspace::shard_of(k) == shard);
            if !ok {
                return Err("ERR STORE and STOREDIST options repeated with different keys are not supported".into());
            }
        }
        (src, sk)
    };
    let srv = ctx.srv;
    let mut guard = match dst {
        Some(d) => srv.keyspace.lock_many([src, d]),
        None => srv.keyspace.lock_many([src]),
    };
    let z = read_zset(ctx, guard.shard(src), src)?;

    let mut shape = Shape {
        xy: [0.0, 0.0],
        conversion: 1.0,
        kind: Kind::Circle { radius: 0.0 },
    };
    let mut storekey: Option<&[u8]> = None;
    let mut storedist = false;
    match variant {
        Variant::Coords => {
            shape.xy = lon_lat(&mut a)?;
            let (r, c) = radius_unit(&mut a)?;
            shape.kind = Kind::Circle { radius: r };
            shape.conversion = c;
        }
        Variant::Member => {
            let member = a.next()?;
            match z {
                None => {
                    a.take(2)?;
                }
                Some(z) => {
                    shape.xy = member_pos(z, member)
                        .ok_or("ERR could not decode requested zset member")?;
                    let (r, c) = radius_unit(&mut a)?;
                    shape.kind = Kind::Circle { radius: r };
                    shape.conversion = c;
                }
            }
        }
        Variant::Search => {
            if search_store {
                storekey = dst;
            }
        }
    }

    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let is_search = variant == Variant::Search;
    while let Some(w) = a.opt() {
        let left = a.remaining();
        if is(w, "withdist") {
            withdist = true;
        } else if is(w, "withhash") {
            withhash = true;
        } else if is(w, "withcoord") {
            withcoord = true;
        } else if is(w, "any") {
            any = true;
        } else if is(w, "asc") {
            sort = Sort::Asc;
        } else if is(w, "desc") {
            sort = Sort::Desc;
        } else if is(w, "count") && left >= 1 {
            count = a.int()?;
            if count <= 0 {
                return Err("ERR COUNT must be > 0".into());
            }
        } else if is(w, "store") && left >= 1 && can_store {
            storekey = Some(a.next()?);
            storedist = false;
        } else if is(w, "storedist") && left >= 1 && can_store {
            storekey = Some(a.next()?);
            storedist = true;
        } else if is(w, "storedist") && search_store {
            storedist = true;
        } else if is(w, "frommember") && left >= 1 && is_search && !fromloc {
            let member = a.next()?;
            if let Some(z) = z {
                shape.xy =
                    member_pos(z, member).ok_or("ERR could not decode requested zset member")?;
            }
            frommember = true;
        } else if is(w, "fromlonlat") && left >= 2 && is_search && !frommember {
            shape.xy = lon_lat(&mut a)?;
            fromloc = true;
        } else if is(w, "byradius") && left >= 2 && is_search && !bybox {
            let (r, c) = radius_unit(&mut a)?;
            shape.kind = Kind::Circle { radius: r };
            shape.conversion = c;
            byradius = true;
        } else if is(w, "bybox") && left >= 3 && is_search && !byradius {
            let width = float_or(a.next()?, "ERR need numeric width")?;
            let height = float_or(a.next()?, "ERR need numeric height")?;
            if height < 0.0 || width < 0.0 {
                return Err("ERR height or width cannot be negative".into());
            }
            shape.conversion = unit(a.next()?)?;
            shape.kind = Kind::Box { width, height };
            bybox = true;
        } else {
            return Err(err::SYNTAX.into());
        }
    }

    if storekey.is_some() && (withdist || withhash || withcoord) {
        return Err(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if search_store {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )
        .into());
    }
    let cmd_name = String::from_utf8_lossy(name.split(|&b| b == 0).next().unwrap_or(b""));
    if is_search && !(frommember || fromloc) {
        return Err(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {cmd_name}"
        )
        .into());
    }
    if is_search && !(byradius || bybox) {
        return Err(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {cmd_name}"
        )
        .into());
    }
    if any && count == 0 {
        return Err("ERR the ANY argument requires COUNT argument".into());
    }

    let Some(z) = z else {
        match storekey {
            Some(sk) => {
                let shard = guard.shard(sk);
                if ctx.lookup_write(shard, sk).is_some() {
                    shard.db_mut(ctx.db()).remove(sk);
                    ctx.modified(shard, sk, "del");
                }
                drop(guard);
                ctx.reply().int(0);
            }
            None => {
                drop(guard);
                ctx.reply().array(0);
            }
        }
        return Ok(());
    };

    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let limit = if any { count as usize } else { 0 };
    let mut found = search(z, &shape, limit);
    if found.is_empty() && storekey.is_none() {
        drop(guard);
        ctx.reply().array(0);
        return Ok(());
    }
    let total = found.len();
    let returned = if count == 0 || (total as i64) < count {
        total
    } else {
        count as usize
    };
    match sort {
        Sort::None => {}
        Sort::Asc => sort_found(&mut found, returned, false),
        Sort::Desc => sort_found(&mut found, returned, true),
    }
    found.truncate(returned);
    for f in &mut found {
        f.dist /= shape.conversion;
    }

    match storekey {
        None => {
            drop(guard);
            let opts = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
            let mut r = ctx.reply();
            r.array(returned);
            for f in &found {
                if opts > 0 {
                    r.array(opts + 1);
                }
                r.bulk(&f.member);
                if withdist {
                    r.bulk(fmt_dist(f.dist).as_bytes());
                }
                if withhash {
                    r.int(double_to_i64(f.score));
                }
                if withcoord {
                    reply_pos(&mut r, f.xy);
                }
            }
        }
        Some(sk) => {
            let lim = limits(ctx);
            let db = ctx.db();
            let shard = guard.shard(sk);
            // Drop an expired destination first (its "expired" event), as setKey's lookup does.
            let existed = ctx.lookup_write(shard, sk).is_some();
            if returned > 0 {
                let z = ZSet::from_pairs(
                    found.iter().map(|f| {
                        (
                            f.member.as_slice(),
                            if storedist { f.dist } else { f.score },
                        )
                    }),
                    &lim,
                );
                shard
                    .db_mut(db)
                    .upsert(Entry::new(sk, Value::ZSet(Box::new(z)), ctx.lru_clock()));
                ctx.modified(
                    shard,
                    sk,
                    if is_search {
                        "geosearchstore"
                    } else {
                        "georadiusstore"
                    },
                );
            } else if existed {
                shard.db_mut(db).remove(sk);
                ctx.modified(shard, sk, "del");
            }
            drop(guard);
            ctx.reply().int(returned as i64);
        }
    }
    Ok(())
}

/// Orders the results by distance. All of them when every one is returned (a stable sort, as glibc's
/// qsort is); otherwise only the first `returned` need to be in order.
fn sort_found(found: &mut [Found], returned: usize, desc: bool) {
    let cmp = |a: &Found, b: &Found| {
        let o = a
            .dist
            .partial_cmp(&b.dist)
            .unwrap_or(std::cmp::Ordering::Equal);
        if desc {
            o.reverse()
        } else {
            o
        }
    };
    let _ = returned;
    found.sort_by(cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_redis() {
        // GEOADD k 13.361389 38.115556 Palermo 15.087269 37.502669 Catania (Redis's documentation).
        assert_eq!(encode_score(13.361389, 38.115556), 3479099956230698);
        assert_eq!(encode_score(15.087269, 37.502669), 3479447370796909);
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
    }

    #[test]
    fn distance_formatting() {
        assert_eq!(fmt_dist(0.0), "0.0000");
        assert_eq!(fmt_dist(166274.15156960033), "166274.1516");
        assert_eq!(fmt_dist(0.00004), "0.0000");
        assert_eq!(fmt_coord(-0.0), "0");
        assert_eq!(fmt_coord(1.0), "1");
    }

    #[test]
    fn never_panics_on_odd_scores() {
        for s in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1e300,
            -1e300,
            4503599627370496.0,
        ] {
            let _ = decode_score(s);
            let _ = geohash_string(s);
        }
    }
}
