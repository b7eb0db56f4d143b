# The photo case of cases.scm from Python-Fu (GIMP 3): the procedure's config filled in
# by name, the rest at its defaults. PHOTO, MODEL and OUT are replaced by the test.
from gi.repository import Gimp, Gio

out = "OUT"
facts = open(out + "/facts.txt", "w")
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("PHOTO"))
layer = image.get_selected_drawables()[0]
image.select_ellipse(Gimp.ChannelOps.REPLACE, 150, 120, 200, 160)
Gimp.Selection.feather(image, 30)
procedure = Gimp.get_pdb().lookup_procedure("plug-in-inpaint")
config = procedure.create_config()
config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
config.set_property("image", image)
config.set_core_object_array("drawables", [layer])
config.set_property("prompt", "a red ball")
config.set_property("model", "MODEL")
config.set_property("steps", 3)
config.set_property("seed", 42)
result = procedure.run(config)
status = result.index(0)
facts.write("FACT python-status %s\n" % status.value_nick.upper())
if status == Gimp.PDBStatusType.SUCCESS:
    new_layer = result.index(1)
    _, x, y = new_layer.get_offsets()
    facts.write("FACT python-layer %d %d %d %d\n" % (x, y, new_layer.get_width(), new_layer.get_height()))
    image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(out + "/python-merged.png"), None)
else:
    facts.write("FACT python-error %s\n" % result.index(1))
facts.close()
